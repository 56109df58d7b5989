/**
 * The egress engine: the DNS proxy, the firewall, the NFLOG reader and the L7
 * (TLS SNI / HTTP Host) check around one compiled policy. Sensors (proxy,
 * NFLOG, L7) emit onto the pipeline; the firewall consumes the policy's
 * answers. Used by `runwall exec` (one job namespace) and `runwall agent` (a
 * whole machine) alike.
 */
import { specialAddressReason, type CompiledPolicy, type ConnectionDecision } from '../../policy/index.js';
import type { DnsEvent, RuleRef, UnsequencedEvent } from '../../protocol/index.js';
import { DnsProxy, type DecodedResponse, type DnsExchange, type DnsGate, type DnsQuestionInfo, type ResponseDecision } from '../dns/index.js';
import type { Admission, Firewall } from '../enforce/firewall.js';
import type { L7Scope } from '../enforce/l7-rules.js';
import { L7Inspector, type L7JudgeThread, type L7Stats } from '../l7/l7-inspector.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import { NflogReader, type NflogPacket } from '../platform/index.js';
import { AddressBook } from './address-book.js';
import { ConnectionFolder, connectionFromPacket } from './connection-events.js';
import { DnsFolder } from './dns-folder.js';
import { HeldEvents } from './held-events.js';
import { withFields } from '../with-fields.js';

export interface EngineProblem {
  readonly code: string;
  readonly message: string;
  readonly time: string;
}

export interface EgressEngineOptions {
  readonly policy: CompiledPolicy;
  readonly firewall: Firewall;
  readonly pipeline: EventPipeline;
  readonly dns: {
    readonly listen: readonly { readonly address: string; readonly port: number }[];
    readonly upstream: { readonly address: string; readonly port: number };
  };
  /** Called after the table is in place and before the resolver listens (exec: create the job's network). */
  readonly prepareNetwork?: () => void | Promise<void>;
  /** The TLS SNI / HTTP Host check: where the job's flows enter it and the NFQUEUE it reads (absent: no check). */
  readonly l7?: { readonly scope: L7Scope; readonly queue: number; readonly judgeIn?: L7JudgeThread };
  readonly foldWindowMs?: number;
  /** How long DNS events wait before they go out, so the process that asked can be attributed (default 200 ms). */
  readonly dnsHoldMs?: number;
  /** Identical DNS exchanges within this window after the first fold into one event with a count (default 2000 ms; 0: no folding). */
  readonly dnsFoldWindowMs?: number;
  readonly tamperCheckMs?: number;
}

/** What the engine needs before the caller's table is ready (see EgressEngine.prepare). */
export type EgressEnginePrelude = Pick<EgressEngineOptions, 'policy' | 'pipeline' | 'l7' | 'foldWindowMs' | 'dnsHoldMs' | 'dnsFoldWindowMs'>;
/** The rest, given to enforce(). */
export type EgressEngineRules = Omit<EgressEngineOptions, keyof EgressEnginePrelude>;

/**
 * What the engine notes on its decision about an answer; the proxy hands it back in the
 * exchange, so the event says what was admitted, or why the answer was cut short.
 */
interface AnswerNote {
  /** Cut short by the block list or the firewall (or, in audit mode, would have been). */
  readonly override?: { readonly verdict: 'attack-blocked' | 'blocked' | 'audit'; readonly rule: RuleRef };
  /** Admitted to the firewall before the answer was released. */
  readonly admitted?: readonly Admission[];
}
type EngineGate = DnsGate<AnswerNote>;
type OnQuery = ReturnType<EngineGate['onQuery']>;
type OnResponse = ResponseDecision<AnswerNote>;
// Answered per query: shared, not allocated each time.
const FORWARD: OnQuery = Object.freeze({ action: 'forward' });
const ANSWER_NXDOMAIN = Object.freeze({ action: 'answer', rcode: 'NXDOMAIN' } as const);
const RELEASE: OnResponse = Object.freeze({ action: 'release' });

const MALFORMED_RULE: RuleRef = {
  source: 'builtin',
  entry: 'malformed-dns',
  explanation: 'the DNS message could not be decoded; it was not forwarded',
};

function now(): string {
  return new Date().toISOString();
}

export class EgressEngine {
  readonly policy: CompiledPolicy;
  readonly problems: EngineProblem[] = [];
  readonly addresses = new AddressBook();
  readonly #pipeline: EventPipeline;
  readonly #folder: ConnectionFolder;
  readonly #dnsHold: HeldEvents<UnsequencedEvent>;
  readonly #dnsFolder: DnsFolder;
  /** The L7 worker opening since prepare(), marked handled (its failure comes out of enforce()). */
  readonly #l7Opening: Promise<L7Inspector> | null;
  #firewall: Firewall | null = null;
  #proxy: DnsProxy<AnswerNote> | null = null;
  #nflog: NflogReader | null = null;
  #l7: L7Inspector | null = null;
  #tamperTimer: NodeJS.Timeout | null = null;
  #tampered = false;
  /** A restore of the table is under way: the next checks wait for it. */
  #restoring = false;
  /** Every rule is in place (enforce() resolved): the resolver's answers no longer wait. */
  #enforced = false;
  /** Settles when enforce() has every rule in place, or has failed; forwarded answers wait for it. */
  readonly #enforcing: Promise<void>;
  #settleEnforcing: { resolve: () => void; reject: (error: unknown) => void } = { resolve: () => undefined, reject: () => undefined };

  private constructor(options: EgressEnginePrelude) {
    this.policy = options.policy;
    this.#pipeline = options.pipeline;
    this.#folder = new ConnectionFolder(options.foldWindowMs ?? 500, (event) => this.#pipeline.emit(event));
    this.#dnsHold = new HeldEvents(options.dnsHoldMs ?? 200, (event) => this.#pipeline.emit(event));
    this.#dnsFolder = new DnsFolder(options.dnsFoldWindowMs ?? 2000, (event) => this.#dnsHold.add(event as UnsequencedEvent));
    const l7 = options.l7;
    this.#l7Opening = l7
      ? L7Inspector.open({
          policy: options.policy,
          rules: { scope: l7.scope, queue: l7.queue, mode: options.policy.mode },
          namesOf: (ip) => this.addresses.namesOf(ip),
          emit: (event) => this.#pipeline.emit(event),
          onProblem: (code, message) => this.#problem(code, `L7 check: ${message}`),
          onTamper: (message) => this.#tamper(message),
          ...(options.foldWindowMs !== undefined ? { foldWindowMs: options.foldWindowMs } : {}),
          ...(l7.judgeIn ? { judgeIn: l7.judgeIn } : {}),
        }).then((inspector) => (this.#l7 = inspector))
      : null;
    this.#l7Opening?.catch(() => undefined);
    this.#enforcing = new Promise<void>((resolve, reject) => {
      this.#settleEnforcing = { resolve, reject };
    });
    this.#enforcing.catch(() => undefined);
  }

  /**
   * Starts what takes longest and lets nothing flow, while the caller still prepares its
   * table (an agent: its cgroup, the bridges): the L7 worker thread loads its modules and
   * binds its queue, but feeds nothing to it before enforce(). On a failure before
   * enforce(), stop() ends it.
   */
  static prepare(options: EgressEnginePrelude): EgressEngine {
    return new EgressEngine(options);
  }

  /** prepare() and enforce() in one. */
  static async start(options: EgressEngineOptions): Promise<EgressEngine> {
    const engine = EgressEngine.prepare(options);
    await engine.enforce(options);
    return engine;
  }

  /**
   * Table first, then the network, then the sensors: nothing flows before it is governed.
   * What takes time but lets nothing flow runs side by side with the table and the
   * network's set-up: the L7 worker (since prepare()), the NFLOG reader binding its group.
   * The L7 rules feed the queue only once it is read (the worker binds first). The resolver
   * listens once the network is there, beside the L7 rules going in, but an answer it
   * forwarded goes out (and its addresses are admitted) only once every rule is in place;
   * until then it answers only names it refuses. Resolves then; on failure everything is
   * stopped and the table removed.
   */
  async enforce(options: EgressEngineRules): Promise<void> {
    const opening: Promise<unknown>[] = [];
    /** Starts `open` now; its failure is kept for the await below, and marked handled so it cannot crash the process meanwhile. */
    const begin = <T>(open: Promise<T>): Promise<T> => {
      opening.push(open.catch(() => undefined));
      return open;
    };
    if (this.#l7Opening) begin(this.#l7Opening);
    try {
      const nflog = begin(
        NflogReader.open(
          options.firewall.config.nflogGroup,
          (packet) => this.#onPacket(packet),
          (error) => this.#problem(error.code, `firewall log: ${error.message}`),
        ).then((reader) => (this.#nflog = reader)),
      );
      this.#firewall = options.firewall;
      // Loaded in this thread (exec: done before install() returns) or by a helper process (agent), which
      // goes on while the network is set up and the L7 thread starts. Answers wait for #enforcing either way.
      const installing = begin(
        options.firewall.install().then(() => {
          const fallback = options.firewall.admissionFallback;
          if (fallback) this.#problem(fallback.code, fallback.message);
        }),
      );
      await options.prepareNetwork?.();
      // The network is there, so its addresses can be bound; answers wait for #enforcing.
      const proxy = begin(DnsProxy.start({ listen: options.dns.listen, upstream: options.dns.upstream, gate: this.#gate() }).then((started) => (this.#proxy = started)));
      // After the network: its set-up may put accept rules first in FORWARD, and the L7 jump must come before them.
      if (this.#l7Opening) await (await this.#l7Opening).install();
      await installing;
      await nflog;
      await proxy;
    } catch (error: unknown) {
      this.#settleEnforcing.reject(error);
      // Whatever was still opening is let finish, so stop() closes it too.
      await Promise.all(opening);
      await this.stop();
      throw error;
    }
    this.#enforced = true;
    this.#settleEnforcing.resolve();
    const every = options.tamperCheckMs ?? 500;
    if (every > 0) {
      this.#tamperTimer = setInterval(() => this.#checkTable(), every);
      this.#tamperTimer.unref();
    }
  }

  get resolverAddresses(): readonly { address: string; port: number }[] {
    return this.#proxy?.addresses ?? [];
  }

  get tampered(): boolean {
    return this.#tampered;
  }

  dnsStats(): ReturnType<DnsProxy['stats']> | null {
    return this.#proxy?.stats() ?? null;
  }

  /** What the L7 check saw, or null when it is off. */
  l7Stats(): L7Stats | null {
    return this.#l7?.stats() ?? null;
  }

  #problem(code: string, message: string): void {
    const problem = { code, message, time: now() };
    this.problems.push(problem);
    this.#pipeline.emit({ kind: 'agent', time: problem.time, action: 'error', code, message });
  }

  /** Rules of the L7 check were changed behind the agent's back; the check has restored them (or says why not). */
  #tamper(message: string): void {
    this.#tampered = true;
    const time = now();
    this.problems.push({ code: 'RW_SETUP_FAILED', message: `tampering: ${message}`, time });
    this.#pipeline.emit({ kind: 'agent', time, action: 'tamper', code: 'RW_SETUP_FAILED', message });
  }

  #checkTable(): void {
    if (!this.#firewall || this.#restoring) return;
    const firewall = this.#firewall;
    const state = firewall.verify();
    if (state.intact) return;
    this.#tampered = true;
    const time = now();
    this.problems.push({ code: 'RW_NFT_FAILED', message: `tampering: ${state.problem}`, time });
    this.#pipeline.emit({ kind: 'agent', time, action: 'tamper', code: 'RW_NFT_FAILED', message: `${state.problem}; restoring the rules` });
    this.#restoring = true;
    firewall
      .restore()
      .then(
        () => this.#pipeline.emit({ kind: 'agent', time: now(), action: 'enforcing', message: `table inet ${firewall.table} restored` }),
        (error: unknown) => this.#problem('RW_NFT_FAILED', `could not restore the rules: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => (this.#restoring = false));
  }

  #onPacket(packet: NflogPacket): void {
    const event = connectionFromPacket(packet, this.policy, this.addresses.namesOf(packet.destination));
    if (event) this.#folder.add(event);
  }

  #gate(): EngineGate {
    return {
      onQuery: (question) => (this.policy.decideName(question.name).forward ? FORWARD : ANSWER_NXDOMAIN),
      onResponse: (question, response) =>
        this.#enforced ? this.#onResponse(question, response) : this.#enforcing.then(() => this.#onResponse(question, response)),
      onExchange: (exchange) => this.#onExchange(exchange),
    };
  }

  /** On the answer's way to the client: only what must be decided before it is released. */
  #onResponse(question: DnsQuestionInfo, response: DecodedResponse): OnResponse {
    const { addresses } = response;
    const ips: string[] = [];
    for (const address of addresses) ips.push(address.ip);
    const hit: ConnectionDecision | null = this.policy.checkAnswer(response.names, ips);
    if (hit) return { action: 'answer', rcode: 'NXDOMAIN', note: { override: { verdict: 'attack-blocked', rule: hit.rule } } };
    for (const ip of ips) this.addresses.learn(ip, question.name);
    const decision = this.policy.decideName(question.name);
    const rebinding = this.#rebinding(question.name, response, decision.ports);
    if (rebinding) {
      // Audit mode lets the answer through but admits nothing: the connection is then recorded as audit.
      if (this.policy.mode === 'block') return { action: 'answer', rcode: 'NXDOMAIN', note: { override: { verdict: 'blocked', rule: rebinding } } };
      return { action: 'release', note: { override: { verdict: 'audit', rule: rebinding } } };
    }
    if (decision.verdict !== 'allowed' || addresses.length === 0) return RELEASE;
    const admissions: Admission[] = [];
    for (const address of addresses) {
      for (const port of decision.ports) admissions.push({ family: address.family, ip: address.ip, port, ttlSeconds: address.ttl });
    }
    try {
      if (!this.#firewall) throw new Error('the engine is not enforcing');
      this.#firewall.admit(admissions);
    } catch (error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      this.#problem('RW_NFT_FAILED', `could not admit the addresses of ${question.name}: ${message}`);
      const rule: RuleRef = { source: 'builtin', entry: 'admission-failed', explanation: `the firewall refused the addresses of ${question.name}; the answer was withheld (SERVFAIL)` };
      return { action: 'answer', rcode: 'SERVFAIL', note: { override: { verdict: 'blocked', rule } } };
    }
    // Written out as text when the exchange is recorded, after the answer has gone.
    return { action: 'release', note: { admitted: admissions } };
  }

  /** An answer pointing at loopback, link-local (metadata) or similar addresses that no IP entry allows. */
  #rebinding(name: string, response: DecodedResponse, ports: readonly number[]): RuleRef | null {
    for (const address of response.addresses) {
      const reason = specialAddressReason(address.ip);
      if (!reason) continue;
      const explicitlyAllowed = ports.some(
        (port) => this.policy.decideConnection({ ip: address.ip, port, protocol: 'tcp' }).verdict === 'allowed',
      );
      if (explicitlyAllowed) continue;
      return {
        source: 'builtin',
        entry: 'no-special-addresses-from-dns',
        explanation: `${name} resolved to ${reason}; runwall never opens such addresses from a DNS answer (DNS rebinding), so the answer was withheld`,
        suggestion: `if the job really needs it, add the address itself (e.g. \`${address.family === 6 ? `[${address.ip}]` : address.ip}:443\`) to allowed-endpoints`,
      };
    }
    return null;
  }

  #onExchange(exchange: DnsExchange<AnswerNote>): void {
    const base = {
      kind: 'dns' as const,
      time: exchange.time.toISOString(),
      transport: exchange.transport,
      client: exchange.client,
      rcode: exchange.rcode ?? 'NONE',
      ...(exchange.error ? { error: { code: exchange.error.code, message: exchange.error.message } } : {}),
    };
    let event: Omit<DnsEvent, 'seq'>;
    if (!exchange.question) {
      event = withFields(base, { name: '', qtype: '', verdict: 'blocked' as const, rule: MALFORMED_RULE, answers: [], admitted: [] });
    } else {
      const note = exchange.decision?.note;
      const override = note?.override;
      const admissions = note?.admitted;
      const admitted = admissions ? admissions.map((a) => (a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`)) : [];
      const decision = this.policy.decideName(exchange.question.name);
      const released = exchange.forwarded && exchange.response !== null && (!override || override.verdict === 'audit');
      event = withFields(base, {
        name: exchange.question.name,
        qtype: exchange.question.qtype,
        verdict: override?.verdict ?? decision.verdict,
        rule: override?.rule ?? decision.rule,
        answers: released && exchange.response ? exchange.response.answers.map((a) => ({ ...a })) : [],
        admitted,
      });
    }
    this.#dnsFolder.add(event);
  }

  /**
   * Stops the sensors and removes the table; what was pending is flushed to the pipeline first.
   * `flushAfter`: what must be done before the held events go out (the process sensor's stop:
   * its last records attribute them); the engine's own sources stop meanwhile.
   */
  async stop(options: { keepTable?: boolean; flushAfter?: Promise<unknown> } = {}): Promise<void> {
    if (this.#tamperTimer) clearInterval(this.#tamperTimer);
    this.#tamperTimer = null;
    // Stopped before enforce() (the caller's set-up failed): the worker may still be opening.
    await this.#l7Opening?.catch(() => undefined);
    // Side by side: the resolver answers no more; the L7 check takes its rules out and answers what it held.
    const l7 = this.#l7;
    await Promise.all([this.#proxy?.close(), l7?.stop()]);
    this.#proxy = null;
    this.#l7 = null;
    if (l7) {
      const seen = l7.stats();
      this.#pipeline.emit({ kind: 'agent', time: now(), action: 'sensor', message: `TLS SNI / HTTP Host check: ${seen.packets} packets read, ${seen.flowsJudged} flows judged, ${seen.flowsDenied} denied` });
    }
    // Closing reads what the kernel has logged up to now (the job's last blocked attempts) first.
    await this.#nflog?.close();
    this.#nflog = null;
    await options.flushAfter?.catch(() => undefined);
    this.#folder.flush();
    this.#dnsFolder.flush();
    this.#dnsHold.flush();
    if (options.keepTable) this.#firewall?.close();
    else this.#firewall?.remove();
  }
}
