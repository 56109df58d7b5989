/**
 * The egress engine: the DNS proxy, the firewall, the NFLOG reader and the L7
 * (TLS SNI / HTTP Host) check around one compiled policy. Sensors (proxy,
 * NFLOG, L7) emit onto the pipeline; the firewall consumes the policy's
 * answers. Used by `runwall exec` (one job namespace) and `runwall agent` (a
 * whole machine) alike.
 */
import { specialAddressReason, type CompiledPolicy, type ConnectionDecision } from '../../policy/index.js';
import type { DnsEvent, RuleRef, UnsequencedEvent } from '../../protocol/index.js';
import { DnsProxy, type DecodedResponse, type DnsExchange, type DnsGate, type DnsQuestionInfo } from '../dns/index.js';
import type { Firewall } from '../enforce/firewall.js';
import type { L7Scope } from '../enforce/l7-rules.js';
import { L7Inspector, type L7Stats } from '../l7/l7-inspector.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import { NflogReader, type NflogPacket } from '../platform/index.js';
import { AddressBook } from './address-book.js';
import { ConnectionFolder, connectionFromPacket } from './connection-events.js';
import { DnsFolder } from './dns-folder.js';
import { HeldEvents } from './held-events.js';

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
  readonly l7?: { readonly scope: L7Scope; readonly queue: number };
  readonly foldWindowMs?: number;
  /** How long DNS events wait before they go out, so the process that asked can be attributed (default 200 ms). */
  readonly dnsHoldMs?: number;
  /** Identical DNS exchanges within this window after the first fold into one event with a count (default 2000 ms; 0: no folding). */
  readonly dnsFoldWindowMs?: number;
  readonly tamperCheckMs?: number;
}

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
  readonly #options: EgressEngineOptions;
  readonly #pipeline: EventPipeline;
  readonly #firewall: Firewall;
  readonly #folder: ConnectionFolder;
  readonly #dnsHold: HeldEvents<UnsequencedEvent>;
  readonly #dnsFolder: DnsFolder;
  /** Answers cut short by the block list or the firewall, by `client id`, until their exchange is reported. */
  readonly #overrides = new Map<string, { verdict: 'attack-blocked' | 'blocked' | 'audit'; rule: RuleRef; admitted: string[] }>();
  readonly #admitted = new Map<string, string[]>();
  #proxy: DnsProxy | null = null;
  #nflog: NflogReader | null = null;
  #l7: L7Inspector | null = null;
  #tamperTimer: NodeJS.Timeout | null = null;
  #tampered = false;

  private constructor(options: EgressEngineOptions) {
    this.#options = options;
    this.policy = options.policy;
    this.#pipeline = options.pipeline;
    this.#firewall = options.firewall;
    this.#folder = new ConnectionFolder(options.foldWindowMs ?? 500, (event) => this.#pipeline.emit(event));
    this.#dnsHold = new HeldEvents(options.dnsHoldMs ?? 200, (event) => this.#pipeline.emit(event));
    this.#dnsFolder = new DnsFolder(options.dnsFoldWindowMs ?? 2000, (event) => this.#dnsHold.add(event as UnsequencedEvent));
  }

  /**
   * Table first, then the network, then the sensors: nothing flows before it is governed.
   * What takes time but lets nothing flow starts at once and runs side by side with the
   * table and the network's set-up: the L7 worker thread loading and binding its queue,
   * the NFLOG reader binding its group. The L7 rules feed the queue only once it is read
   * (the worker binds first), and the resolver listens last, so no answer goes out before
   * every rule is in place; resolves only then.
   */
  static async start(options: EgressEngineOptions): Promise<EgressEngine> {
    const engine = new EgressEngine(options);
    const opening: Promise<unknown>[] = [];
    /** Starts `open` now; its failure is kept for the await below, and marked handled so it cannot crash the process meanwhile. */
    const begin = <T>(open: Promise<T>): Promise<T> => {
      opening.push(open.catch(() => undefined));
      return open;
    };
    try {
      const l7 = options.l7
        ? begin(
            L7Inspector.open({
              policy: options.policy,
              rules: { scope: options.l7.scope, queue: options.l7.queue, mode: options.policy.mode },
              namesOf: (ip) => engine.addresses.namesOf(ip),
              emit: (event) => engine.#pipeline.emit(event),
              onProblem: (code, message) => engine.#problem(code, `L7 check: ${message}`),
              onTamper: (message) => engine.#tamper(message),
              ...(options.foldWindowMs !== undefined ? { foldWindowMs: options.foldWindowMs } : {}),
            }).then((inspector) => (engine.#l7 = inspector)),
          )
        : null;
      const nflog = begin(
        NflogReader.open(
          options.firewall.config.nflogGroup,
          (packet) => engine.#onPacket(packet),
          (error) => engine.#problem(error.code, `firewall log: ${error.message}`),
        ).then((reader) => (engine.#nflog = reader)),
      );
      options.firewall.install();
      const fallback = options.firewall.admissionFallback;
      if (fallback) engine.#problem(fallback.code, fallback.message);
      await options.prepareNetwork?.();
      // After the network: its set-up may put accept rules first in FORWARD, and the L7 jump must come before them.
      if (l7) await (await l7).install();
      await nflog;
      engine.#proxy = await DnsProxy.start({ listen: options.dns.listen, upstream: options.dns.upstream, gate: engine.#gate() });
    } catch (error: unknown) {
      // Whatever was still opening is let finish, so stop() closes it too.
      await Promise.all(opening);
      await engine.stop();
      throw error;
    }
    const every = options.tamperCheckMs ?? 500;
    if (every > 0) {
      engine.#tamperTimer = setInterval(() => engine.#checkTable(), every);
      engine.#tamperTimer.unref();
    }
    return engine;
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
    const state = this.#firewall.verify();
    if (state.intact) return;
    this.#tampered = true;
    const time = now();
    this.problems.push({ code: 'RW_NFT_FAILED', message: `tampering: ${state.problem}`, time });
    this.#pipeline.emit({ kind: 'agent', time, action: 'tamper', code: 'RW_NFT_FAILED', message: `${state.problem}; restoring the rules` });
    try {
      this.#firewall.restore();
      this.#pipeline.emit({ kind: 'agent', time: now(), action: 'enforcing', message: `table inet ${this.#firewall.table} restored` });
    } catch (error: unknown) {
      this.#problem('RW_NFT_FAILED', `could not restore the rules: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #onPacket(packet: NflogPacket): void {
    const event = connectionFromPacket(packet, this.policy, this.addresses.namesOf(packet.destination));
    if (event) this.#folder.add(event);
  }

  #gate(): DnsGate {
    const key = (question: DnsQuestionInfo, client: string): string => `${client} ${question.id} ${question.name} ${question.qtype}`;
    return {
      onQuery: (question) => {
        const decision = this.policy.decideName(question.name);
        return decision.forward ? { action: 'forward' } : { action: 'answer', rcode: 'NXDOMAIN' };
      },
      onResponse: (question, response, client) => this.#onResponse(question, response, key(question, client)),
      onExchange: (exchange) => this.#onExchange(exchange, exchange.question ? key(exchange.question, exchange.client) : ''),
    };
  }

  #onResponse(question: DnsQuestionInfo, response: DecodedResponse, key: string): { action: 'release' } | { action: 'answer'; rcode: 'NXDOMAIN' | 'SERVFAIL' } {
    const hit: ConnectionDecision | null = this.policy.checkAnswer(
      response.names,
      response.addresses.map((a) => a.ip),
    );
    if (hit) {
      this.#overrides.set(key, { verdict: 'attack-blocked', rule: hit.rule, admitted: [] });
      return { action: 'answer', rcode: 'NXDOMAIN' };
    }
    for (const address of response.addresses) this.addresses.learn(address.ip, question.name);
    const decision = this.policy.decideName(question.name);
    const rebinding = this.#rebinding(question.name, response, decision.ports);
    if (rebinding) {
      const verdict = this.policy.mode === 'block' ? 'blocked' : 'audit';
      this.#overrides.set(key, { verdict, rule: rebinding, admitted: [] });
      // Audit mode lets the answer through but admits nothing: the connection is then recorded as audit.
      return verdict === 'blocked' ? { action: 'answer', rcode: 'NXDOMAIN' } : { action: 'release' };
    }
    if (decision.verdict !== 'allowed' || response.addresses.length === 0) return { action: 'release' };
    const admissions = response.addresses.flatMap((address) =>
      decision.ports.map((port) => ({ family: address.family, ip: address.ip, port, ttlSeconds: address.ttl })),
    );
    try {
      this.#firewall.admit(admissions);
    } catch (error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      this.#problem('RW_NFT_FAILED', `could not admit the addresses of ${question.name}: ${message}`);
      this.#overrides.set(key, {
        verdict: 'blocked',
        rule: { source: 'builtin', entry: 'admission-failed', explanation: `the firewall refused the addresses of ${question.name}; the answer was withheld (SERVFAIL)` },
        admitted: [],
      });
      return { action: 'answer', rcode: 'SERVFAIL' };
    }
    this.#admitted.set(
      key,
      admissions.map((a) => (a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`)),
    );
    return { action: 'release' };
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

  #onExchange(exchange: DnsExchange, key: string): void {
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
      event = { ...base, name: '', qtype: '', verdict: 'blocked', rule: MALFORMED_RULE, answers: [], admitted: [] };
    } else {
      const override = this.#overrides.get(key);
      this.#overrides.delete(key);
      const admitted = this.#admitted.get(key) ?? [];
      this.#admitted.delete(key);
      const decision = this.policy.decideName(exchange.question.name);
      const released = exchange.forwarded && exchange.response !== null && (!override || override.verdict === 'audit');
      event = {
        ...base,
        name: exchange.question.name,
        qtype: exchange.question.qtype,
        verdict: override?.verdict ?? decision.verdict,
        rule: override?.rule ?? decision.rule,
        answers: released && exchange.response ? exchange.response.answers.map((a) => ({ ...a })) : [],
        admitted,
      };
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
    if (options.keepTable) this.#firewall.close();
    else this.#firewall.remove();
  }
}
