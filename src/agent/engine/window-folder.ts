/**
 * Folds repeats of one thing (same key) seen within `windowMs` into one event
 * with a count: a blocked client retrying, or 200 connections to one allowed
 * name, make one line. The first sighting waits at most `windowMs`.
 */
import { withFields } from '../with-fields.js';

export class WindowFolder<E extends { readonly count?: number }> {
  readonly #pending = new Map<string, { event: E; timer: NodeJS.Timeout }>();

  constructor(
    private readonly windowMs: number,
    private readonly keyOf: (event: E) => string,
    private readonly emit: (event: E) => void,
  ) {}

  add(event: E): void {
    const key = this.keyOf(event);
    const pending = this.#pending.get(key);
    if (pending) {
      pending.event = withFields(pending.event, { count: (pending.event.count ?? 1) + (event.count ?? 1) });
      return;
    }
    const timer = setTimeout(() => this.#release(key), this.windowMs);
    timer.unref();
    this.#pending.set(key, { event, timer });
  }

  #release(key: string): void {
    const pending = this.#pending.get(key);
    if (!pending) return;
    this.#pending.delete(key);
    clearTimeout(pending.timer);
    this.emit(pending.event);
  }

  flush(): void {
    for (const key of [...this.#pending.keys()]) this.#release(key);
  }
}
