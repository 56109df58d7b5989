/**
 * The L7 (TLS SNI / HTTP Host) check of a run, main-thread side: starts the
 * worker thread that owns the NFQUEUE and the verdicts (l7-worker.ts), and
 * turns the flow starts it judged into folded `http` events, explained with
 * the names the destination was learned from by DNS.
 *
 * Fail closed: if the worker dies, its queue stays bound with nobody reading
 * (block mode rules never bypass), so flows that need the check fail; that is
 * reported as a problem of the run.
 */
import type { CompiledPolicy } from '../../policy/index.js';
import { RunwallError, type ErrorCode } from '../../protocol/index.js';
import type { L7RulesConfig } from '../enforce/l7-rules.js';
import type { FlowLimits } from './flow-table.js';
import { HttpFolder } from './http-folder.js';
import { judgeFlowStart, type HttpDraft } from './l7-decision.js';
import { removeL7Rules, type L7Stats, type L7WorkerCommand, type L7WorkerData, type L7WorkerMessage } from './l7-worker.js';
import { InThreadL7 } from './l7-in-thread.js';
import { adoptL7WorkerThread } from './l7-worker-thread.js';

export { removeL7Rules, type L7Stats } from './l7-worker.js';

export interface L7InspectorOptions {
  readonly policy: CompiledPolicy;
  readonly rules: L7RulesConfig;
  /** Names the address was learned from by DNS (the engine's address book). */
  readonly namesOf: (ip: string) => readonly string[];
  readonly emit: (event: HttpDraft) => void;
  readonly onProblem: (code: ErrorCode, message: string) => void;
  /** Its rules were changed behind its back (and restored, or not: the message says). */
  readonly onTamper: (message: string) => void;
  readonly foldWindowMs?: number;
  readonly limits?: Partial<FlowLimits>;
  /** Where the packets are judged: a worker thread of their own (default), or this thread (l7-in-thread.ts says why). */
  readonly judgeIn?: L7JudgeThread;
}

export type L7JudgeThread = 'worker' | 'this-thread';

/** What the inspector uses of the thread that judges the packets: a Worker, or an InThreadL7. */
interface JudgeThread {
  postMessage(command: L7WorkerCommand): void;
  terminate(): Promise<number>;
  on(event: 'message', listener: (message: L7WorkerMessage) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'exit', listener: (code: number) => void): unknown;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export class L7Inspector {
  readonly #options: L7InspectorOptions;
  readonly #folder: HttpFolder;
  readonly #worker: JudgeThread;
  #stats: L7Stats = { packets: 0, flowsJudged: 0, flowsDenied: 0 };
  /** A start phase under way: the message that ends it, and how to end it. */
  #waiting: { readonly phase: 'bound' | 'ready'; readonly resolve: () => void; readonly reject: (error: RunwallError) => void } | null = null;
  #started = false;
  #exited = false;
  #stopping: Promise<void> | null = null;
  #stopped: (() => void) | null = null;

  private constructor(options: L7InspectorOptions, worker: JudgeThread) {
    this.#options = options;
    this.#worker = worker;
    this.#folder = new HttpFolder(options.foldWindowMs ?? 500, options.emit);
    worker.on('message', (message: L7WorkerMessage) => this.#onMessage(message));
    worker.on('error', (error) => {
      if (this.#waiting) this.#waiting.reject(new RunwallError('RW_SETUP_FAILED', `the L7 check could not start: ${error.message}`));
      else this.#options.onProblem('RW_INTERNAL', `the L7 check failed: ${error.message}; flows that need the check now fail (fail closed)`);
    });
    worker.once('exit', (code) => {
      this.#exited = true;
      this.#stopped?.();
      if (this.#waiting) this.#waiting.reject(new RunwallError('RW_SETUP_FAILED', `the L7 check exited while starting (status ${code})`));
      else if (this.#started && !this.#stopping) this.#options.onProblem('RW_INTERNAL', `the L7 check stopped (status ${code}); flows that need the check now fail (fail closed)`);
    });
  }

  /**
   * Starts the worker thread: it loads its modules and binds the queue, but no rule feeds
   * the queue yet (install()), so this can run while the network is still being set up.
   * Meanwhile this thread removes what a crashed run left under the same names (loading
   * again would add a second jump beside its): the caller has made sure no live run owns
   * them (an agent refuses to start beside a running one; an exec run's names are its own).
   * RunwallError (and nothing left behind) when it cannot.
   */
  static async open(options: L7InspectorOptions): Promise<L7Inspector> {
    const data: L7WorkerData = { kind: 'runwall-l7', policy: options.policy.policy, rules: options.rules, ...(options.limits ? { limits: options.limits } : {}) };
    const worker: JudgeThread = options.judgeIn === 'this-thread' ? new InThreadL7() : adoptL7WorkerThread();
    const inspector = new L7Inspector(options, worker);
    worker.postMessage({ type: 'configure', data } satisfies L7WorkerCommand);
    const clearing = removeL7Rules(options.rules.scope);
    try {
      await inspector.#phase('bound', () => undefined);
    } finally {
      await clearing;
    }
    return inspector;
  }

  /**
   * Installs the rules that feed the queue; resolves once they are in. Call after whatever
   * must come after them in FORWARD (they are inserted first). On failure the worker is
   * gone and its rules removed; stop() is then a no-op.
   */
  async install(): Promise<void> {
    await this.#phase('ready', () => this.#worker.postMessage({ type: 'install' }));
    this.#started = true;
  }

  /** Waits (bounded) for the worker to reach `phase`; on failure ends it and removes whatever rules it had loaded. */
  async #phase(phase: 'bound' | 'ready', begin: () => void): Promise<void> {
    if (this.#exited) throw new RunwallError('RW_SETUP_FAILED', 'the L7 check is not running');
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new RunwallError('RW_SETUP_FAILED', `the L7 check did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        const settle = (): void => {
          clearTimeout(timer);
          this.#waiting = null;
        };
        this.#waiting = {
          phase,
          resolve: () => {
            settle();
            resolve();
          },
          reject: (error) => {
            settle();
            reject(error);
          },
        };
        begin();
      });
    } catch (error) {
      this.#stopping ??= Promise.resolve();
      await this.#worker.terminate();
      await removeL7Rules(this.#options.rules.scope);
      throw error;
    }
  }

  /** What the check saw so far (packet counts arrive when it stops). */
  stats(): L7Stats {
    return this.#stats;
  }

  #onMessage(message: L7WorkerMessage): void {
    switch (message.type) {
      case 'flow': {
        const judgement = judgeFlowStart(this.#options.policy, message.flow, message.start, this.#options.namesOf(message.flow.destination), new Date(message.time));
        this.#stats = {
          ...this.#stats,
          flowsJudged: this.#stats.flowsJudged + 1,
          flowsDenied: this.#stats.flowsDenied + (judgement.pass ? 0 : 1),
        };
        this.#folder.add(judgement.event);
        return;
      }
      case 'problem':
        this.#options.onProblem(message.code, message.message);
        return;
      case 'tamper':
        this.#options.onTamper(message.message);
        return;
      case 'stopped':
        this.#stats = message.stats;
        this.#stopped?.();
        return;
      case 'bound':
      case 'ready':
        if (this.#waiting?.phase === message.type) this.#waiting.resolve();
        return;
      case 'failed':
        if (this.#waiting) this.#waiting.reject(new RunwallError(message.code, message.message));
        else this.#options.onProblem(message.code, `the L7 check failed: ${message.message}; flows that need the check now fail (fail closed)`);
        return;
    }
  }

  /** The worker removes its rules, answers what it held and closes the queue; then the events are flushed. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (!this.#exited) {
        const clean = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS);
          this.#stopped = () => {
            clearTimeout(timer);
            resolve(true);
          };
          this.#worker.postMessage({ type: 'stop' });
        });
        if (!clean) {
          this.#options.onProblem('RW_INTERNAL', `the L7 check did not stop within ${STOP_TIMEOUT_MS} ms; its rules were removed from here`);
          await removeL7Rules(this.#options.rules.scope);
        }
      }
      await this.#worker.terminate();
      this.#folder.flush();
    })();
    return this.#stopping;
  }
}
