/**
 * The recommended policy: the allowed-endpoints that would let this run pass
 * in block mode, and nothing more. Block-list hits and traffic that an entry
 * cannot admit (UDP, ICMP, ...) are listed as excluded, with why.
 */
import type { EffectivePolicy, RecommendedPolicy, RunEvent } from '../protocol/index.js';
import { compilePolicy, normalizeQueryName, type CompiledPolicy } from './compile.js';
import { parseEndpoint } from './endpoints.js';
import { deepFreeze } from './freeze.js';
import { checkDomain, destinationText } from './host.js';
import { displayAddress, httpHostName } from './summary.js';

const ON_BLOCK_LIST = 'on the global block list';
const TCP_ONLY = 'allowed-endpoints admit TCP only';
const WAS_BLOCKED = 'blocked by the policy in this run; add it yourself if the job needs it';

class Recommender {
  readonly entries = new Set<string>();
  readonly excluded = new Map<string, { destination: string; reason: string }>();

  constructor(private readonly compiled: CompiledPolicy) {}

  exclude(destination: string, reason: string): void {
    this.excluded.set(JSON.stringify([destination, reason]), { destination, reason });
  }

  /** A TCP destination the run reached: recommend `name:port`, or `ip:port` when no usable name is known. */
  tcp(ip: string, port: number | null, rawName: string | undefined): void {
    const address = displayAddress(ip);
    const name = rawName === undefined ? undefined : normalizeQueryName(rawName);
    const host = name !== undefined && checkDomain(name).ok ? name : address;
    if (port === null) {
      this.exclude(host, 'no destination port was recorded');
      return;
    }
    const text = destinationText(host, port);
    const decision = this.compiled.decideConnection({ ip: address, port, protocol: 'tcp', ...(name === undefined ? {} : { name }) });
    if (decision.verdict === 'attack-blocked') {
      this.exclude(text, ON_BLOCK_LIST);
      return;
    }
    this.add(text);
  }

  /** A name the run resolved but never connected to: `name:443`, so block mode forwards its lookups. */
  resolvedName(rawName: string): void {
    const name = normalizeQueryName(rawName);
    if (!checkDomain(name).ok) {
      this.exclude(name, 'not a valid host name');
      return;
    }
    if (this.compiled.decideName(name).verdict === 'attack-blocked') {
      this.exclude(name, ON_BLOCK_LIST);
      return;
    }
    this.add(`${name}:443`);
  }

  private add(text: string): void {
    try {
      this.entries.add(parseEndpoint(text, 'recommended policy').text);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.exclude(text, `not a valid allowed-endpoints entry (${message})`);
    }
  }
}

/** What a run's DNS events for one name ask of the recommendation, should no connection reach the name. */
const ON_LIST = 1;
const BLOCKED = 2;
const RESOLVED = 4;

/**
 * The recommended policy built one event at a time: connections and requests
 * are judged as they come; a DNS name waits (as a few bits) until the end,
 * since a later connection to it makes its DNS events moot.
 */
export class PolicyRecommender {
  readonly #recommender: Recommender;
  readonly #reachedNames = new Set<string>();
  readonly #dnsNames = new Map<string, number>();

  constructor(policy: EffectivePolicy) {
    this.#recommender = new Recommender(compilePolicy(policy));
  }

  add(event: RunEvent): void {
    const recommender = this.#recommender;
    if (event.kind === 'connection') {
      const address = displayAddress(event.destination);
      const name = event.name === undefined ? undefined : normalizeQueryName(event.name);
      if (name !== undefined) this.#reach(name);
      const shown = destinationText(name ?? address, event.port);
      if (event.verdict === 'attack-blocked') recommender.exclude(shown, ON_BLOCK_LIST);
      else if (event.protocol !== 'tcp') recommender.exclude(`${shown}/${event.protocol}`, TCP_ONLY);
      else if (event.verdict === 'blocked') recommender.exclude(shown, WAS_BLOCKED);
      else recommender.tcp(event.destination, event.port, event.name);
    } else if (event.kind === 'http') {
      const name = httpHostName(event.host);
      this.#reach(name);
      if (event.verdict === 'attack-blocked') recommender.exclude(destinationText(name, event.port), ON_BLOCK_LIST);
      else if (event.verdict === 'blocked') recommender.exclude(destinationText(name, event.port), WAS_BLOCKED);
      else recommender.tcp(event.destination, event.port, name);
    } else if (event.kind === 'dns') {
      const name = normalizeQueryName(event.name);
      if (this.#reachedNames.has(name)) return;
      // Only names that resolved: an NXDOMAIN gets the same answer in block mode without an entry.
      const wants = event.verdict === 'attack-blocked' ? ON_LIST : event.verdict === 'blocked' ? BLOCKED : event.rcode === 'NOERROR' ? RESOLVED : 0;
      this.#dnsNames.set(name, (this.#dnsNames.get(name) ?? 0) | wants);
    }
  }

  finish(): RecommendedPolicy {
    const recommender = this.#recommender;
    for (const [name, wants] of this.#dnsNames) {
      if (wants & ON_LIST) recommender.exclude(name, ON_BLOCK_LIST);
      if (wants & BLOCKED) recommender.exclude(name, WAS_BLOCKED);
      if (wants & RESOLVED) recommender.resolvedName(name);
    }
    const allowedEndpoints = [...recommender.entries].sort();
    const recommended = new Set(allowedEndpoints);
    const excluded = [...recommender.excluded.values()]
      // A destination recommended from one event is not also "excluded" because another event was blocked.
      .filter((item) => !(item.reason === WAS_BLOCKED && recommended.has(item.destination)))
      .sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
    return deepFreeze({
      egressPolicy: 'block',
      allowedEndpoints,
      allowedEndpointsText: allowedEndpoints.join('\n'),
      excluded,
    });
  }

  #reach(name: string): void {
    this.#reachedNames.add(name);
    this.#dnsNames.delete(name);
  }
}

export function recommendPolicy(events: readonly RunEvent[], policy: EffectivePolicy): RecommendedPolicy {
  const recommender = new PolicyRecommender(policy);
  for (const event of events) recommender.add(event);
  return recommender.finish();
}
