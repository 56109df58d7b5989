/** Starts every registered sensor; a failure becomes data (an agent error event), never a crash. */
import { RunwallError } from '../../protocol/index.js';
import { SENSOR_FACTORIES } from './registry.js';
import type { Sensor, SensorContext } from './sensor.js';

export interface RunningSensors {
  readonly names: readonly string[];
  /** Start failures, and after stop() also what each sensor met while running. */
  readonly problems: readonly { code: string; message: string; time: string }[];
  stop(): Promise<void>;
}

export async function startSensors(context: SensorContext): Promise<RunningSensors> {
  const running: Sensor[] = [];
  const problems: { code: string; message: string; time: string }[] = [];
  for (const factory of SENSOR_FACTORIES) {
    try {
      const sensor = await factory.start(context);
      if (sensor) running.push(sensor);
    } catch (error: unknown) {
      const code = error instanceof RunwallError ? error.code : 'RW_INTERNAL';
      const message = `sensor ${factory.name} did not start: ${error instanceof Error ? error.message : String(error)}`;
      const time = new Date().toISOString();
      problems.push({ code, message, time });
      context.pipeline.emit({ kind: 'agent', time, action: 'error', code, message });
    }
  }
  return {
    names: running.map((sensor) => sensor.name),
    problems,
    async stop() {
      // Reverse order: a sensor started later may depend on one started earlier.
      for (const sensor of [...running].reverse()) {
        try {
          await sensor.stop();
          problems.push(...(sensor.problems ?? []));
        } catch (error: unknown) {
          const message = `sensor ${sensor.name} did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`;
          context.pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'error', code: 'RW_INTERNAL', message });
        }
      }
    },
  };
}
