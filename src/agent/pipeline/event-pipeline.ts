/**
 * Sensors emit, exporters subscribe (the tetragon shape). The pipeline gives
 * each event its place in the run's stream and hands it, frozen, to every
 * subscriber in order. A subscriber that throws is reported as an agent
 * event, never allowed to stop the others.
 */
import type { RunEvent, UnsequencedEvent } from '../../protocol/index.js';
import { withFields } from '../with-fields.js';

export type EventSubscriber = (event: RunEvent) => void;
/** Fills in what the sensor could not know (the process, the step) before the event gets its place. */
export type EventEnricher = (event: UnsequencedEvent) => UnsequencedEvent;

export class EventPipeline {
  #seq = 0;
  readonly #subscribers: EventSubscriber[] = [];
  readonly #enrichers: EventEnricher[] = [];
  #failing = false;

  subscribe(subscriber: EventSubscriber): () => void {
    this.#subscribers.push(subscriber);
    return () => {
      const index = this.#subscribers.indexOf(subscriber);
      if (index >= 0) this.#subscribers.splice(index, 1);
    };
  }

  enrich(enricher: EventEnricher): void {
    this.#enrichers.push(enricher);
  }

  get count(): number {
    return this.#seq;
  }

  emit(event: UnsequencedEvent): RunEvent {
    let enriched = event;
    for (const enricher of this.#enrichers) {
      try {
        enriched = enricher(enriched);
      } catch (error: unknown) {
        // An enricher's failure leaves the event as it was, with the error as data on it.
        const message = error instanceof Error ? error.message : String(error);
        enriched = withFields(enriched, { error: { code: 'RW_INTERNAL', message: `enrichment failed: ${message}` } }) as UnsequencedEvent;
      }
    }
    this.#seq += 1;
    const sequenced = Object.freeze(withFields(enriched, { seq: this.#seq })) as RunEvent;
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
