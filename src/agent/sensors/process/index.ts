/**
 * The process sensor and its table: what other sensors (steps, files,
 * detections) use. They read the table from `context.shared.get(PROCESS_TABLE_KEY)`
 * and must handle its absence (the sensor may not have started).
 */
export { startProcessSensor } from './process-sensor.js';
export { PROCESS_TABLE_KEY, type ProcessInfo, type ProcessTable } from './process-table.js';
export { RUNNER_WORKER } from './membership.js';
export { toolName } from './tool-name.js';
