/**
 * Sensors emit, exporters subscribe (the tetragon shape). The pipeline gives
 * each event its place in the run's stream and hands it, frozen, to every
 * subscriber in order. A subscriber that throws is reported as an agent
 * event, never allowed to stop the others.
 */
import type { RunEvent, UnsequencedEvent } from '../../protocol/index.js';

export type EventSubscriber = (event: RunEvent) => void;

export class EventPipeline {
  #seq = 0;
  readonly #subscribers: EventSubscriber[] = [];
  #failing = false;

  subscribe(subscriber: EventSubscriber): () => void {
    this.#subscribers.push(subscriber);
    return () => {
      const index = this.#subscribers.indexOf(subscriber);
      if (index >= 0) this.#subscribers.splice(index, 1);
    };
  }

  get count(): number {
    return this.#seq;
  }

  emit(event: UnsequencedEvent): RunEvent {
    this.#seq += 1;
    const sequenced = Object.freeze({ ...event, seq: this.#seq }) as RunEvent;
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber(sequenced);
      } catch (error: unknown) {
        this.#reportSubscriberFailure(error);
      }
    }
    return sequenced;
  }

  #reportSubscriberFailure(error: unknown): void {
    if (this.#failing) return; // a subscriber failing on its own failure report: stop the loop here
    this.#failing = true;
    try {
      this.emit({
        kind: 'agent',
        time: new Date().toISOString(),
        action: 'error',
        code: 'RW_INTERNAL',
        message: `an event subscriber failed: ${error instanceof Error ? error.message : String(error)}`,
      });
    } finally {
      this.#failing = false;
    }
  }
}
