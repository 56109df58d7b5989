/**
 * Holds events a moment before they go out, in the order they came: the
 * kernel's record of what caused them (audit's record of the process's call)
 * arrives a little after the event itself, and attribution happens when the
 * event is emitted. One timer for the whole queue.
 */
export class HeldEvents<E> {
  readonly #queue: { readonly event: E; readonly dueMs: number }[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly holdMs: number,
    private readonly emit: (event: E) => void,
  ) {}

  add(event: E): void {
    if (this.holdMs <= 0) {
      this.emit(event);
      return;
    }
    this.#queue.push({ event, dueMs: Date.now() + this.holdMs });
    this.#arm();
  }

  /** Emits everything held now (at stop). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#release(Number.POSITIVE_INFINITY);
  }

  #arm(): void {
    if (this.#timer || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#release(Date.now());
      this.#arm();
    }, Math.max(0, this.#queue[0]!.dueMs - Date.now()));
    this.#timer.unref();
  }

  #release(nowMs: number): void {
    // One splice per release, not a shift per event: shift is O(n) and the queue holds every
    // query of the last hold window (thousands under load).
    let due = 0;
    while (due < this.#queue.length && this.#queue[due]!.dueMs <= nowMs) due += 1;
    if (due === 0) return;
    for (const { event } of this.#queue.splice(0, due)) this.emit(event);
  }
}
