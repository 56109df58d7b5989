/**
 * The L7 check's packet side (l7-worker.ts) run in the calling thread, behind the same
 * messages a worker thread would exchange: `runwall agent` runs it so.
 *
 * Why: a worker thread is a second V8 isolate and Node environment, about 10 MiB of the
 * agent's resident memory (measured with the agent idle and under DNS load, 64 MiB
 * against 74 idle). The cost: verdicts wait while the event loop runs something else,
 * as the DNS answers that precede a job's connections already do in this thread.
 * Messages go out on setImmediate, in order, as a worker's arrive: no side sees an
 * answer before the call that asked for it has returned.
 */
import { EventEmitter } from 'node:events';
import { runL7Judge, type L7Port, type L7WorkerCommand, type L7WorkerMessage } from './l7-worker.js';

export class InThreadL7 {
  /** What the judge says, to the inspector: 'message', 'error', 'exit' as a Worker emits them. */
  readonly #out = new EventEmitter();
  /** What the inspector says, to the judge. */
  readonly #in = new EventEmitter();
  #exited = false;

  constructor() {
    const port: L7Port = {
      on: (event, listener) => this.#in.on(event, listener),
      once: (event, listener) => this.#in.once(event, listener),
      postMessage: (message) => setImmediate(() => this.#exited || this.#out.emit('message', message)),
      // As a worker thread ends once its port is closed.
      close: () => setImmediate(() => this.#exit(0)),
    };
    // As the worker's bootstrap does: a judge that could not begin says so, and ends.
    runL7Judge(port).catch((error: unknown) => {
      port.postMessage({ type: 'failed', code: 'RW_SETUP_FAILED', message: error instanceof Error ? error.message : String(error) });
      port.close();
    });
  }

  on(event: 'message', listener: (message: L7WorkerMessage) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: 'message' | 'error', listener: ((message: L7WorkerMessage) => void) | ((error: Error) => void)): this {
    this.#out.on(event, listener);
    return this;
  }

  once(event: 'exit', listener: (code: number) => void): this {
    this.#out.once(event, listener);
    return this;
  }

  postMessage(command: L7WorkerCommand): void {
    setImmediate(() => this.#exited || this.#in.emit('message', command));
  }

  /**
   * Nothing more is delivered either way. A worker's queue and timers end with its thread; here
   * the judge is told to stop (a judge still binding its queue closes it when the bind fails or
   * at the process's end).
   */
  async terminate(): Promise<number> {
    if (!this.#exited) this.#in.emit('message', { type: 'stop' } satisfies L7WorkerCommand);
    this.#exit(1);
    return 1;
  }

  #exit(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#out.emit('exit', code);
  }
}
