/** The steps of a run, from its `step` events: one entry per step, in the order they began. Pure. */
import type { RunEvent, StepSummary } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';

type MutableStep = { -readonly [K in keyof StepSummary]: StepSummary[K] };

/**
 * The step summaries built one event at a time: an event may name its step
 * before that step's own event comes, so events are counted per step id and
 * matched to the steps at the end.
 */
export class StepSummaryBuilder {
  readonly #steps = new Map<string, MutableStep>();
  readonly #eventsByStep = new Map<string, number>();

  /** Whether any step event came (a report without steps has no `steps`). */
  get hasSteps(): boolean {
    return this.#steps.size > 0;
  }

  add(event: RunEvent): void {
    if (event.kind !== 'step') {
      if (event.step !== undefined) this.#eventsByStep.set(event.step, (this.#eventsByStep.get(event.step) ?? 0) + 1);
      return;
    }
    let step = this.#steps.get(event.id);
    if (step === undefined) {
      step = { id: event.id, name: event.name, events: 0 };
      this.#steps.set(event.id, step);
    }
    if (event.source !== undefined) step.source = event.source;
    if (event.action === 'begin') {
      step.startedAt = event.time;
      return;
    }
    step.endedAt = event.time;
    step.name = event.name;
    if (event.outcome !== undefined) step.outcome = event.outcome;
    if (event.conclusion !== undefined) step.conclusion = event.conclusion;
    if (event.exitCode !== undefined) step.exitCode = event.exitCode;
    if (event.reason !== undefined) step.reason = event.reason;
    if (event.notes !== undefined && event.notes.length > 0) step.notes = [...event.notes];
  }

  finish(): StepSummary[] {
    return deepFreeze([...this.#steps.values()].map((step) => ({ ...step, events: this.#eventsByStep.get(step.id) ?? 0 })));
  }
}

export function summarizeSteps(events: readonly RunEvent[]): StepSummary[] {
  const builder = new StepSummaryBuilder();
  for (const event of events) builder.add(event);
  return builder.finish();
}
