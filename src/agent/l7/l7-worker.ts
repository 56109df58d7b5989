/**
 * The L7 check's packet side, run in its own worker thread (`runwall exec`) or
 * in the agent's thread (l7-in-thread.ts): binds the NFQUEUE, installs the
 * iptables rules that feed it, puts each flow's first bytes back together
 * (flow-table.ts), judges TLS SNI / HTTP Host against the policy
 * (l7-decision.ts) and answers every queued packet.
 *
 * Why a thread for exec: every new TLS/HTTP flow of the job waits for a verdict
 * from here. On the main thread a sensor that blocks the event loop for a while
 * (reading /proc for hundreds of processes) would stall every connection of
 * the job; in this thread nothing else runs. The main thread gets the judged
 * flow starts and turns them into `http` events (l7-inspector.ts).
 */
import { parentPort } from 'node:worker_threads';
import { compilePolicy, type CompiledPolicy } from '../../policy/index.js';
import { isRunwallError, type EffectivePolicy, type ErrorCode } from '../../protocol/index.js';
import { l7RemovalCommands, l7RemovalRestoreText, l7RestoreText, l7RulesIntact, l7VerdictMark, type L7RulesConfig } from '../enforce/l7-rules.js';
import { NF_DROP, NF_REPEAT, NfqueueReader, iptablesRestore, iptablesSave, iptablesTry, type NfqueueReaderError, type QueuedPacket } from '../platform/index.js';
import { FlowTable, type FlowLimits, type FlowStep, type FlowVerdict } from './flow-table.js';
import { judgeFlowStart, type L7Flow } from './l7-decision.js';
import type { StreamStart } from './stream-start.js';

export type NamedStreamStart = Extract<StreamStart, { kind: 'tls' } | { kind: 'http' }>;

export interface L7WorkerData {
  readonly kind: 'runwall-l7';
  readonly policy: EffectivePolicy;
  readonly rules: L7RulesConfig;
  readonly limits?: Partial<FlowLimits>;
}

export interface L7Stats {
  /** Packets the kernel handed over. */
  readonly packets: number;
  readonly flowsJudged: number;
  readonly flowsDenied: number;
}

/** Worker -> main thread. */
export type L7WorkerMessage =
  /** The queue is bound; no rule feeds it until the main thread says `install`. */
  | { readonly type: 'bound' }
  /** The rules are in: the check is on. */
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly code: ErrorCode; readonly message: string }
  | { readonly type: 'flow'; readonly flow: L7Flow; readonly start: NamedStreamStart; readonly time: string }
  | { readonly type: 'problem'; readonly code: ErrorCode; readonly message: string }
  /** Its iptables rules were changed behind its back (agent mode), and what was done about it. */
  | { readonly type: 'tamper'; readonly message: string }
  | { readonly type: 'stopped'; readonly stats: L7Stats };

/** Main thread -> worker. `configure` comes first, once (the thread may have been started before its policy was known). */
export type L7WorkerCommand = { readonly type: 'configure'; readonly data: L7WorkerData } | { readonly type: 'install' } | { readonly type: 'stop' };

const HOUSEKEEPING_MS = 5000;
/** How often an agent checks that its iptables rules are still there. */
const RULE_CHECK_MS = 2000;

/** Answers queued packets; everything it learns goes out through `post`. */
export class L7PacketJudge {
  readonly #policy: CompiledPolicy;
  readonly #rules: L7RulesConfig;
  readonly #flows: FlowTable;
  readonly #post: (message: L7WorkerMessage) => void;
  /** Marks of packets held without a verdict yet, by packet id. */
  readonly #marks = new Map<number, number>();
  readonly #reported = new Map<ErrorCode, number>();
  readonly #stats = { packets: 0, flowsJudged: 0, flowsDenied: 0 };
  #reader: NfqueueReader | null = null;
  #rulesInstalled = false;
  #installing: Promise<void> | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #deadlineAt = 0;
  #housekeeping: NodeJS.Timeout | null = null;
  #ruleCheck: NodeJS.Timeout | null = null;
  /** The rule check under way, if any: stop() waits for it, so it cannot put rules back after their removal. */
  #checking: Promise<void> | null = null;

  constructor(data: L7WorkerData, post: (message: L7WorkerMessage) => void) {
    this.#policy = compilePolicy(data.policy);
    this.#rules = data.rules;
    this.#flows = new FlowTable(data.limits);
    this.#post = post;
  }

  /** Binds the queue; nothing is queued to it before installRules(). */
  async open(): Promise<void> {
    this.#reader = await NfqueueReader.open(
      this.#rules.queue,
      (packet) => this.#onPacket(packet),
      (error) => this.#onReaderError(error),
    );
  }

  /**
   * The rules that feed the queue, after open(): a packet is never queued while nobody reads
   * the queue. What a crashed run left under the same names is gone by then (the main thread
   * removes it while this thread starts, see L7Inspector.open).
   */
  installRules(): Promise<void> {
    this.#installing ??= this.#install();
    return this.#installing;
  }

  async #install(): Promise<void> {
    if (!this.#reader) throw new Error('L7PacketJudge.installRules before open');
    this.#rulesInstalled = true;
    await loadRules(this.#rules);
    this.#housekeeping = setInterval(() => this.#expire(), HOUSEKEEPING_MS);
    // On a runner the job may have sudo; in exec the rules live where the job cannot reach.
    if (this.#rules.scope.kind === 'agent') {
      this.#ruleCheck = setInterval(() => {
        if (this.#checking || !this.#rulesInstalled) return;
        this.#checking = this.#checkRules().finally(() => {
          this.#checking = null;
        });
      }, RULE_CHECK_MS);
    }
  }

  /** Puts the rules back if a tamperer deleted or flushed them, and says so. */
  async #checkRules(): Promise<void> {
    for (const family of [4, 6] as const) {
      const save = await iptablesSave(family);
      if (save === null || !this.#rulesInstalled) continue;
      const state = l7RulesIntact(save, this.#rules);
      if (state.intact) continue;
      try {
        await removeL7Rules(this.#rules.scope);
        await loadRules(this.#rules);
        this.#post({ type: 'tamper', message: `${state.problem} (IPv${family}); the L7 check's rules were restored` });
      } catch (error) {
        this.#post({ type: 'tamper', message: `${state.problem} (IPv${family}); restoring the L7 check's rules failed: ${error instanceof Error ? error.message : String(error)}` });
      }
      return;
    }
  }

  #onPacket(packet: QueuedPacket): void {
    this.#stats.packets++;
    const tcp = packet.tcp;
    if (!tcp) {
      // Not a TCP segment we can read (the rules queue only TCP): it goes on undecided.
      this.#verdict(packet.id, packet.mark, 'undecided');
      return;
    }
    this.#marks.set(packet.id, packet.mark);
    const key = `${packet.source} ${tcp.sourcePort} ${packet.destination} ${tcp.destinationPort}`;
    const steps = this.#flows.add(
      { key, id: packet.id, sequence: tcp.sequence, syn: tcp.syn, fin: tcp.fin, rst: tcp.rst, payload: tcp.payload },
      Date.now(),
    );
    for (const step of steps) this.#apply(step);
    this.#schedule();
  }

  #apply(step: FlowStep): void {
    if (step.action === 'undecided' || step.action === 'judged') {
      const state = step.action === 'judged' ? step.verdict : 'undecided';
      for (const id of step.ids) this.#verdict(id, this.#takeMark(id), state);
      return;
    }
    let verdict: FlowVerdict = 'pass';
    if (step.start.kind === 'tls' || step.start.kind === 'http') {
      const [, , destination = '', portText = '0'] = step.key.split(' ');
      const flow = { destination, port: Number(portText) };
      const time = new Date();
      // Names learned from DNS only shape the explanation (added on the main thread), never the verdict.
      verdict = judgeFlowStart(this.#policy, flow, step.start, [], time).pass ? 'pass' : 'deny';
      this.#stats.flowsJudged++;
      if (verdict === 'deny') this.#stats.flowsDenied++;
      this.#post({ type: 'flow', flow, start: step.start, time: time.toISOString() });
    }
    this.#flows.settle(step.key, verdict, step.base, Date.now());
    for (const id of step.ids) this.#verdict(id, this.#takeMark(id), verdict);
  }

  #takeMark(id: number): number {
    const mark = this.#marks.get(id) ?? 0;
    this.#marks.delete(id);
    return mark;
  }

  #verdict(id: number, mark: number, state: FlowVerdict | 'undecided'): void {
    this.#reader?.verdict(id, NF_REPEAT, l7VerdictMark(mark, state));
  }

  /** One timer for the earliest held segment's deadline. */
  #schedule(): void {
    const next = this.#flows.nextDeadline();
    if (next === null) return;
    if (this.#deadline && this.#deadlineAt <= next) return;
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadlineAt = next;
    this.#deadline = setTimeout(() => {
      this.#deadline = null;
      this.#expire();
    }, Math.max(0, next - Date.now()));
  }

  #expire(): void {
    for (const step of this.#flows.expire(Date.now())) this.#apply(step);
    this.#schedule();
  }

  #onReaderError(error: NfqueueReaderError): void {
    // A packet that could not be decoded cannot be judged: dropped, so its flow fails closed.
    if (error.id !== undefined) {
      this.#marks.delete(error.id);
      this.#reader?.verdict(error.id, NF_DROP);
    }
    this.#problem(error.code, error.message);
  }

  /** The first problem of each code is reported at once; repeats are counted and reported at stop. */
  #problem(code: ErrorCode, message: string): void {
    const seen = this.#reported.get(code) ?? 0;
    this.#reported.set(code, seen + 1);
    if (seen === 0) this.#post({ type: 'problem', code, message });
  }

  /** Rules out first (nothing new is queued), then every held packet answered, then the queue closed. */
  async stop(): Promise<L7Stats> {
    // An install under way finishes first, so its rules cannot land after the removal below.
    await this.#installing?.catch(() => undefined);
    if (this.#housekeeping) clearInterval(this.#housekeeping);
    this.#housekeeping = null;
    if (this.#ruleCheck) clearInterval(this.#ruleCheck);
    this.#ruleCheck = null;
    await this.#checking;
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = null;
    if (this.#rulesInstalled) {
      this.#rulesInstalled = false;
      // Packets queued meanwhile are still answered: the reader is open until the end.
      await removeL7Rules(this.#rules.scope);
    }
    for (const step of this.#flows.drain()) this.#apply(step);
    for (const [code, count] of this.#reported) {
      if (count > 1) this.#post({ type: 'problem', code, message: `${count - 1} more like the first ${code} were not reported one by one` });
    }
    this.#reported.clear();
    await this.#reader?.close();
    this.#reader = null;
    return { ...this.#stats };
  }
}

/** Loads the rules, IPv4 and IPv6 side by side. */
async function loadRules(rules: L7RulesConfig): Promise<void> {
  const text = l7RestoreText(rules);
  await Promise.all(([4, 6] as const).map((family) => iptablesRestore(family, text)));
}

/**
 * Removes a run's L7 rules (at stop, or what a crashed run left: its reader is gone, so they
 * would hold its flows forever). Per family one save shows what is there and one restore
 * takes it out, IPv4 and IPv6 side by side. Never throws: when that cannot be done (the
 * rules changed between save and restore), each piece is removed on its own, as far as it goes.
 */
export async function removeL7Rules(scope: L7RulesConfig['scope']): Promise<void> {
  await Promise.all(
    ([4, 6] as const).map(async (family) => {
      const save = await iptablesSave(family);
      const text = save === null ? null : l7RemovalRestoreText(save, scope);
      if (text === '') return;
      if (text !== null) {
        try {
          await iptablesRestore(family, text);
          return;
        } catch {
          // One by one below.
        }
      }
      for (const args of l7RemovalCommands(scope)) {
        // `-D` deletes one copy of a rule; a jump added twice (by hand, or by a crash mid-way) goes too.
        const repeats = args.includes('-D') ? 8 : 1;
        for (let i = 0; i < repeats && iptablesTry(family, args); i++);
      }
    }),
  );
}

/** How the packet side hears the main-thread side and answers it: the worker thread's parentPort, or l7-in-thread.ts. */
export interface L7Port {
  on(event: 'message', listener: (command: L7WorkerCommand) => void): unknown;
  once(event: 'message', listener: (command: L7WorkerCommand) => void): unknown;
  postMessage(message: L7WorkerMessage): void;
  /** Said last: nothing more comes from this side. */
  close(): void;
}

/** The worker thread's entry (see l7-inspector.ts for how it is started). */
export async function runL7Worker(): Promise<void> {
  if (!parentPort) throw new Error('runL7Worker runs only in the L7 worker thread');
  await runL7Judge(parentPort);
}

/** The packet side behind `port`: configured, then bound, then told to install and to stop. */
export async function runL7Judge(port: L7Port): Promise<void> {
  const data = await new Promise<L7WorkerData>((resolve, reject) => {
    port.once('message', (command: L7WorkerCommand) => {
      if (command.type === 'configure' && command.data?.kind === 'runwall-l7') resolve(command.data);
      else reject(new Error(`the L7 check was sent '${command.type}' before its configuration`));
    });
  });
  const post = (message: L7WorkerMessage): void => port.postMessage(message);
  const judge = new L7PacketJudge(data, post);
  let ending: Promise<void> | null = null;
  /** Stops once, saying `stopped` (asked to) or `failed` (could not start). */
  const end = (failure?: { error: unknown }): Promise<void> =>
    (ending ??= judge.stop().then(
      (stats) => {
        if (!failure) post({ type: 'stopped', stats });
        else post({ type: 'failed', code: isRunwallError(failure.error) ? failure.error.code : 'RW_SETUP_FAILED', message: failure.error instanceof Error ? failure.error.message : String(failure.error) });
        port.close();
      },
      () => port.close(),
    ));
  try {
    await judge.open();
  } catch (error) {
    await end({ error });
    return;
  }
  port.on('message', (command: L7WorkerCommand) => {
    if (command.type === 'configure') return;
    if (command.type === 'stop') {
      void end();
      return;
    }
    judge.installRules().then(
      () => {
        if (!ending) post({ type: 'ready' });
      },
      (error: unknown) => void end({ error }),
    );
  });
  post({ type: 'bound' });
}
