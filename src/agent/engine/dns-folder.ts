/**
 * Folds repeated DNS exchanges so a job resolving one name thousands of times
 * makes a handful of events, not thousands (memory and report size stay bounded).
 */
import type { DnsEvent } from '../../protocol/index.js';
import { clientAddress } from '../dns/index.js';
import { withFields } from '../with-fields.js';

export type DnsDraft = Omit<DnsEvent, 'seq'>;

/**
 * What makes two exchanges the same: known before emit (the asking process is
 * attributed at emit time, so the client address stands in for it).
 */
export function dnsFoldKey(event: DnsDraft): string {
  // Built per query on the resolver's path, so a plain string, not JSON. The free-form fields (a name
  // may hold any byte) are preceded by their length, so no two different exchanges can share a key.
  // Joined, not a template literal: V8 makes a template into a rope (a ConsString per piece, ~250
  // bytes more per key), and a busy resolver keeps tens of thousands of keys for the window.
  const entry = event.rule.entry ?? '';
  return [event.name.length, event.name, event.qtype, event.transport, event.verdict, event.rcode, clientAddress(event.client), event.rule.source, entry.length, entry, event.error?.code ?? ''].join(' ');
}

/**
 * The first exchange of a kind goes out at once (the events stream stays
 * prompt); repeats within `windowMs` after it are counted and go out as one
 * event with `count` when the window closes, keeping the first repeat's time,
 * answers and admissions. The next exchange after that opens a new window.
 *
 * Every window is as long, so windows close in the order they opened: one
 * timer for the oldest, not one per window (a busy resolver has thousands
 * open, and a timer each was a large part of the agent's memory).
 */
export class DnsFolder {
  /** Open windows, oldest first (a Map iterates in insertion order). */
  readonly #open = new Map<string, { readonly closesAtMs: number; repeat: DnsDraft | null; count: number }>();
  readonly #windowMs: number;
  readonly #emit: (event: DnsDraft) => void;
  #timer: NodeJS.Timeout | null = null;

  constructor(windowMs: number, emit: (event: DnsDraft) => void) {
    this.#windowMs = windowMs;
    this.#emit = emit;
  }

  add(event: DnsDraft): void {
    const key = dnsFoldKey(event);
    const open = this.#open.get(key);
    if (open) {
      if (open.repeat === null) open.repeat = event;
      open.count += event.count ?? 1;
      return;
    }
    this.#emit(event);
    if (this.#windowMs <= 0) return;
    this.#open.set(key, { closesAtMs: Date.now() + this.#windowMs, repeat: null, count: 0 });
    this.#arm();
  }

  /** Emits every folded repeat now (at stop). */
  flush(): void {
    this.#closeUntil(Number.POSITIVE_INFINITY);
  }

  #arm(): void {
    if (this.#timer !== null) return;
    const oldest = this.#open.values().next();
    if (oldest.done === true) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#closeUntil(Date.now());
      this.#arm();
    }, Math.max(0, oldest.value.closesAtMs - Date.now()));
    this.#timer.unref();
  }

  /** Closes the windows that close by `nowMs`, oldest first. */
  #closeUntil(nowMs: number): void {
    for (const [key, open] of this.#open) {
      if (open.closesAtMs > nowMs) break;
      this.#open.delete(key);
      if (open.repeat !== null) this.#emit(withFields(open.repeat, { count: open.count }));
    }
    if (this.#open.size === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
