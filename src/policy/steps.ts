/** The steps of a run, from its `step` events: one entry per step, in the order they began. Pure. */
import type { RunEvent, StepSummary } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';

export function summarizeSteps(events: readonly RunEvent[]): StepSummary[] {
  const steps = new Map<string, { -readonly [K in keyof StepSummary]: StepSummary[K] }>();
  for (const event of events) {
    if (event.kind !== 'step') continue;
    let step = steps.get(event.id);
    if (step === undefined) {
      step = { id: event.id, name: event.name, events: 0 };
      steps.set(event.id, step);
    }
    if (event.source !== undefined) step.source = event.source;
    if (event.action === 'begin') {
      step.startedAt = event.time;
      continue;
    }
    step.endedAt = event.time;
    step.name = event.name;
    if (event.outcome !== undefined) step.outcome = event.outcome;
    if (event.conclusion !== undefined) step.conclusion = event.conclusion;
    if (event.exitCode !== undefined) step.exitCode = event.exitCode;
    if (event.reason !== undefined) step.reason = event.reason;
    if (event.notes !== undefined && event.notes.length > 0) step.notes = [...event.notes];
  }
  for (const event of events) {
    if (event.kind === 'step' || event.step === undefined) continue;
    const step = steps.get(event.step);
    if (step !== undefined) step.events += 1;
  }
  return deepFreeze([...steps.values()]);
}
