/**
 * Folds repeats of one L7 flow (same verdict, TLS or not, name, address,
 * port and explanation) seen within `windowMs` into one `http` event with a count, as
 * ConnectionFolder does for connections: 200 connections to one allowed name
 * make one line. The first sighting waits at most `windowMs`.
 */
import type { HttpDraft } from './l7-decision.js';

export class HttpFolder {
  readonly #pending = new Map<string, { event: HttpDraft; timer: NodeJS.Timeout }>();
  readonly #windowMs: number;
  readonly #emit: (event: HttpDraft) => void;

  constructor(windowMs: number, emit: (event: HttpDraft) => void) {
    this.#windowMs = windowMs;
    this.#emit = emit;
  }

  add(event: HttpDraft): void {
    const key = JSON.stringify([event.verdict, event.tls, event.host, event.destination, event.port, event.rule.explanation, event.error?.code ?? null]);
    const pending = this.#pending.get(key);
    if (pending) {
      pending.event = { ...pending.event, count: (pending.event.count ?? 1) + (event.count ?? 1) };
      return;
    }
    const timer = setTimeout(() => this.#release(key), this.#windowMs);
    timer.unref();
    this.#pending.set(key, { event, timer });
  }

  #release(key: string): void {
    const pending = this.#pending.get(key);
    if (!pending) return;
    this.#pending.delete(key);
    clearTimeout(pending.timer);
    this.#emit(pending.event);
  }

  flush(): void {
    for (const key of [...this.#pending.keys()]) this.#release(key);
  }
}
