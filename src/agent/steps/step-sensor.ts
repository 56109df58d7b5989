/**
 * The steps "sensor": it senses nothing itself but gives every event its
 * step. It puts the step tracker on the pipeline as an enricher (after the
 * process sensor's, which fills in the process it reads) and, in agent mode,
 * finds the steps a CI runner starts. The tracker is published as
 * `context.shared.get('steps')` for explicit markers (the agent's control socket).
 */
import type { Sensor, SensorContext } from '../sensors/sensor.js';
import { watchRunnerSteps } from './runner-steps.js';
import { StepTracker, type ProcessLookup } from './step-tracker.js';

export const STEPS_KEY = 'steps';
/** Where the process sensor publishes its table (sensors/process/process-table.ts PROCESS_TABLE_KEY). */
const PROCESSES_KEY = 'processes';

function isProcessLookup(value: unknown): value is ProcessLookup {
  return typeof value === 'object' && value !== null && ['get', 'ancestry', 'onExec', 'onExit'].every((name) => typeof (value as Record<string, unknown>)[name] === 'function');
}

export async function startStepSensor(context: SensorContext): Promise<Sensor> {
  const table = context.shared.get(PROCESSES_KEY);
  const processes = isProcessLookup(table) ? table : null;
  const tracker = new StepTracker(processes);
  context.pipeline.enrich(tracker.enrich);
  context.shared.set(STEPS_KEY, tracker);
  const stops: (() => void)[] = [];
  if (processes !== null) {
    stops.push(processes.onExec((info) => tracker.learnExec(info)));
    stops.push(processes.onExit((info) => tracker.forget(info)));
    if (context.scope.kind === 'agent') stops.push(watchRunnerSteps(processes, context.pipeline, tracker));
  } else {
    context.pipeline.emit({
      kind: 'agent',
      time: new Date().toISOString(),
      action: 'sensor',
      message: 'steps: no process table (the process sensor is not running): events are given the step open at their time',
    });
  }
  return {
    name: 'steps',
    async stop() {
      for (const stop of stops.reverse()) stop();
    },
  };
}
