/**
 * The sensors a run starts, in order (one line each). A sensor that fails to
 * start is reported as an agent error event; enforcement does not depend on it.
 */
import { startFileSensor } from './file/file-sensor.js';
import { startDetectSensor } from './detect/detect-sensor.js';
import { startProcessSensor } from './process/index.js';
import type { SensorFactory } from './sensor.js';
import { startStepSensor } from '../steps/step-sensor.js';

export const SENSOR_FACTORIES: readonly { readonly name: string; readonly start: SensorFactory }[] = [
  { name: 'process', start: startProcessSensor },
  // After the process sensor: its enricher reads the process the process sensor's enricher fills in.
  { name: 'steps', start: startStepSensor },
  { name: 'file', start: startFileSensor },
  // After the process sensor: it reads the process table the process sensor publishes.
  { name: 'detect', start: startDetectSensor },
];
