/**
 * The compiled policy: the questions the DNS proxy and the firewall ask,
 * answered with a verdict and a rule that explains itself.
 *
 * Name matching costs O(labels of the name), not O(entries): exact names
 * are Map keys, and wildcards and block-list domains are found by walking
 * up the name's labels. Networks are found with one Map lookup per prefix
 * length in use.
 *
 * Block-list semantics: a domain entry `evil.test` blocks `evil.test` AND
 * every subdomain (attackers rotate subdomains); `*.evil.test` blocks only
 * the subdomains. The block list wins over allowed endpoints in every mode.
 */
import {
  RunwallError,
  type BlockListEntry,
  type EffectivePolicy,
  type EgressMode,
  type Endpoint,
  type RuleRef,
  type TransportProtocol,
  type Verdict,
} from '../protocol/index.js';
import { checkBlockTarget } from './block-list.js';
import { parseEndpoint } from './endpoints.js';
import { deepFreeze } from './freeze.js';
import { asciiLower, checkDomain, destinationText, parseHostTarget, type HostTarget } from './host.js';
import { formatIp, networkKey, parseCidr, parseIp, wireAddress, type IpAddress, type IpFamily, type IpNetwork } from './ip.js';

export interface NameDecision {
  readonly verdict: Verdict;
  readonly rule: RuleRef;
  /** Whether the DNS proxy may forward the query upstream. */
  readonly forward: boolean;
  /** TCP ports the name's addresses may be reached on (allowed verdicts only). */
  readonly ports: readonly number[];
}

export interface ConnectionDecision {
  readonly verdict: Verdict;
  readonly rule: RuleRef;
}

export interface ConnectionQuery {
  readonly ip: string;
  readonly port: number | null;
  readonly protocol: TransportProtocol;
  /** The name the address was learned from by DNS, when known. */
  readonly name?: string;
}

export interface StaticAllow {
  readonly family: 4 | 6;
  readonly cidr: string;
  readonly port: number;
}

export interface BlockedNetwork {
  readonly family: 4 | 6;
  readonly cidr: string;
  readonly entry: BlockListEntry;
}

export interface CompiledPolicy {
  readonly policy: EffectivePolicy;
  readonly mode: EgressMode;
  decideName(name: string): NameDecision;
  /** A forwarded answer: if any CNAME target name or answer address is on the block list, the hit (else null). */
  checkAnswer(names: readonly string[], addresses: readonly string[]): ConnectionDecision | null;
  decideConnection(c: ConnectionQuery): ConnectionDecision;
  /** ip/cidr allowed-endpoints, for the firewall's static allow set. */
  staticAllows(): readonly StaticAllow[];
  /** ip/cidr block-list entries, for the firewall's deny set (every mode). */
  blockedNetworks(): readonly BlockedNetwork[];
}

/** A name as the matcher compares it: ASCII lower case (DNS folds only ASCII), trailing dots dropped. */
export function normalizeQueryName(name: string): string {
  // Names from runwall's own DNS decoder are already in this form: one scan, no copies.
  if (!NOT_NORMALIZED.test(name)) return name;
  return asciiLower(name).replace(/\.+$/, '');
}
const NOT_NORMALIZED = /[A-Z]|\.$/;

/** Networks keyed per prefix length: a lookup costs one Map probe per prefix length in use. */
class NetworkTable<T> {
  private readonly byKey = new Map<string, T[]>();
  private readonly prefixes: Record<IpFamily, number[]> = { 4: [], 6: [] };

  add(network: IpNetwork, value: T): void {
    const key = networkKey(network.family, network.bytes, network.prefix);
    const list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, [value]);
    else list.push(value);
    const prefixes = this.prefixes[network.family];
    if (!prefixes.includes(network.prefix)) {
      prefixes.push(network.prefix);
      prefixes.sort((a, b) => b - a);
    }
  }

  /** Every value whose network holds `address`, the most specific first. */
  lookup(address: IpAddress): T[] {
    const out: T[] = [];
    for (const prefix of this.prefixes[address.family]) {
      const found = this.byKey.get(networkKey(address.family, address.bytes, prefix));
      if (found !== undefined) out.push(...found);
    }
    return out;
  }
}

function targetNetwork(target: HostTarget): IpNetwork | null {
  if (target.kind === 'ip') {
    const address = parseIp(target.value);
    return address === null ? null : { ...address, prefix: address.family === 4 ? 32 : 128 };
  }
  if (target.kind === 'cidr') {
    const parsed = parseCidr(target.value);
    return 'network' in parsed ? parsed.network : null;
  }
  return null;
}

function cidrText(network: IpNetwork): string {
  return `${formatIp(network)}/${network.prefix}`;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function uniqueSorted(values: readonly number[]): number[] {
  if (values.length === 1) return [values[0]!];
  return [...new Set(values)].sort((a, b) => a - b);
}

/**
 * deepFreeze for a name decision, whose rule holds only strings: made for every name the
 * resolver has not seen (the generic walk, with its WeakSet, was a third of the work).
 */
function frozenNameDecision(verdict: Verdict, rule: RuleRef, forward: boolean, ports: number[]): NameDecision {
  return Object.freeze({ verdict, rule: Object.freeze(rule), forward, ports: Object.freeze(ports) });
}

function blockExplanation(subject: string, entry: BlockListEntry): string {
  const as = subject === entry.text ? '' : ` as ${entry.text}`;
  const source = entry.source === undefined ? '' : `, source: ${entry.source}`;
  return `${subject} is on the global block list${as} (${entry.reason}${source}); an allowed-endpoints entry never overrides the block list`;
}

function blockRule(subject: string, entry: BlockListEntry): RuleRef {
  return {
    source: 'block-list',
    entry: entry.text,
    reason: entry.reason,
    explanation: blockExplanation(subject, entry),
  };
}

function allowRule(subject: string, endpoints: readonly Endpoint[]): RuleRef {
  const texts = endpoints.map((endpoint) => endpoint.text);
  const which = texts.length === 1 ? `allowed endpoint ${texts[0]}` : `allowed endpoints ${texts.join(', ')}`;
  return { source: 'allowed-endpoints', entry: texts[0] ?? '', explanation: `${subject} matches ${which}` };
}

function modeNote(mode: EgressMode): string {
  return mode === 'block' ? 'block mode' : 'audit mode: let through and recorded, it would be blocked in block mode';
}

function denyVerdict(mode: EgressMode): Verdict {
  return mode === 'block' ? 'blocked' : 'audit';
}

function addSuggestion(entry: string): string {
  return `add \`${entry}\` to allowed-endpoints`;
}

function tcpOnlySuggestion(protocol: TransportProtocol, destination: string, port: number | null): string {
  const quic = protocol === 'udp' && port === 443 ? ' (for QUIC/HTTP/3, let the client fall back to HTTPS over TCP)' : '';
  return `allowed-endpoints admit only TCP, so ${protocol.toUpperCase()} to ${destination} cannot be allowed by an entry${quic}`;
}

function invalidPolicy(code: 'RW_ENDPOINT_INVALID' | 'RW_BLOCKLIST_INVALID', text: string, problem: string): RunwallError {
  return new RunwallError(code, `effective policy: entry '${text}' ${problem}`, { entry: text });
}

/**
 * Bound on remembered name decisions, the oldest forgotten first. A decision is ~340 bytes: 8192 of them
 * were ~2.8 MiB of the agent under a resolver flood of distinct names, where they are never asked
 * for again; a build asks for the same few names, and each query asks three times within milliseconds.
 */
const NAME_CACHE_LIMIT = 1024;

class Compiled implements CompiledPolicy {
  readonly mode: EgressMode;
  private readonly exactAllowed = new Map<string, Endpoint[]>();
  private readonly wildcardAllowed = new Map<string, Endpoint[]>();
  private readonly allowedNetworks = new NetworkTable<Endpoint>();
  private readonly blockedDomains = new Map<string, BlockListEntry>();
  private readonly blockedWildcards = new Map<string, BlockListEntry>();
  private readonly blockedNets = new NetworkTable<BlockListEntry>();
  private readonly allows: StaticAllow[] = [];
  private readonly denies: BlockedNetwork[] = [];
  private readonly nameCache = new Map<string, NameDecision>();

  constructor(readonly policy: EffectivePolicy) {
    this.mode = policy.egressPolicy;
    if (this.mode !== 'audit' && this.mode !== 'block') {
      throw new RunwallError('RW_MODE_INVALID', `effective policy: egress-policy must be "audit" or "block", not ${JSON.stringify(this.mode)}`);
    }
    for (const given of policy.allowedEndpoints) {
      // Re-checked because an EffectivePolicy may come from a report file rather than from our parsers.
      const endpoint = parseEndpoint(given.text, 'effective policy');
      if (endpoint.kind === 'domain') pushTo(this.exactAllowed, endpoint.host, endpoint);
      else if (endpoint.kind === 'wildcard') pushTo(this.wildcardAllowed, endpoint.host, endpoint);
      else {
        const target = parseHostTarget(endpoint.host);
        const network = target.ok ? targetNetwork(target.value) : null;
        if (network === null) throw invalidPolicy('RW_ENDPOINT_INVALID', given.text, 'is not an address or network');
        this.allowedNetworks.add(network, endpoint);
        this.allows.push({ family: network.family, cidr: cidrText(network), port: endpoint.port });
      }
    }
    for (const given of policy.blockList) {
      const target = checkBlockTarget(given.text);
      if (!target.ok) throw invalidPolicy('RW_BLOCKLIST_INVALID', given.text, target.problem);
      const t = target.value;
      if (t.kind === 'domain') {
        if (!this.blockedDomains.has(t.value)) this.blockedDomains.set(t.value, given);
      } else if (t.kind === 'wildcard') {
        if (!this.blockedWildcards.has(t.value)) this.blockedWildcards.set(t.value, given);
      } else {
        const network = targetNetwork(t);
        if (network === null) throw invalidPolicy('RW_BLOCKLIST_INVALID', given.text, 'is not an address or network');
        this.blockedNets.add(network, given);
        this.denies.push({ family: network.family, cidr: cidrText(network), entry: given });
      }
    }
    deepFreeze(this.allows);
    deepFreeze(this.denies);
  }

  /** The most specific block-list entry covering a (normalized) name, or undefined. */
  private blockedName(name: string): BlockListEntry | undefined {
    const exact = this.blockedDomains.get(name);
    if (exact !== undefined) return exact;
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
      const suffix = name.slice(dot + 1);
      const hit = this.blockedDomains.get(suffix) ?? this.blockedWildcards.get(suffix);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** Allowed endpoints matching a (normalized) name, the most specific first. */
  private allowedFor(name: string): Endpoint[] {
    const out = [...(this.exactAllowed.get(name) ?? [])];
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
      const found = this.wildcardAllowed.get(name.slice(dot + 1));
      if (found !== undefined) out.push(...found);
    }
    return out;
  }

  private blockedAddress(ip: IpAddress | null): BlockListEntry | undefined {
    return ip === null ? undefined : this.blockedNets.lookup(ip)[0];
  }

  decideName(rawName: string): NameDecision {
    // Decisions are immutable for a compiled policy; a build asks for the same few names again and again.
    const cached = this.nameCache.get(rawName);
    if (cached !== undefined) return cached;
    const decision = this.decideNameUncached(rawName);
    const oldest = this.nameCache.size >= NAME_CACHE_LIMIT ? this.nameCache.keys().next() : null;
    if (oldest && !oldest.done) this.nameCache.delete(oldest.value);
    this.nameCache.set(rawName, decision);
    return decision;
  }

  private decideNameUncached(rawName: string): NameDecision {
    const name = normalizeQueryName(rawName);
    const shown = name === '' ? '(the root)' : name;
    const blocked = this.blockedName(name);
    if (blocked !== undefined) {
      return frozenNameDecision('attack-blocked', blockRule(shown, blocked), false, []);
    }
    const matches = this.allowedFor(name);
    if (matches.length > 0) {
      return frozenNameDecision('allowed', allowRule(shown, matches), true, uniqueSorted(matches.map((endpoint) => endpoint.port)));
    }
    const valid = checkDomain(name).ok;
    const rule: RuleRef = {
      source: 'default-deny',
      explanation: valid
        ? `${shown} matches no allowed endpoint (${modeNote(this.mode)})`
        : `${shown} is not a valid host name and matches no allowed endpoint (${modeNote(this.mode)})`,
      ...(valid ? { suggestion: addSuggestion(`${name}:443`) } : {}),
    };
    return frozenNameDecision(denyVerdict(this.mode), rule, this.mode === 'audit', []);
  }

  checkAnswer(names: readonly string[], addresses: readonly string[]): ConnectionDecision | null {
    // Asked before every answer is released: a block list without names (or without networks) has nothing to find there.
    const anyNames = this.blockedDomains.size > 0 || this.blockedWildcards.size > 0;
    for (let i = 0; anyNames && i < names.length; i++) {
      const raw = names[i]!;
      const name = normalizeQueryName(raw);
      const hit = this.blockedName(name);
      if (hit !== undefined) return deepFreeze({ verdict: 'attack-blocked', rule: blockRule(`${name} (in the DNS answer)`, hit) });
    }
    for (let i = 0; this.denies.length > 0 && i < addresses.length; i++) {
      const raw = addresses[i]!;
      const parsed = parseIp(raw);
      const address = parsed === null ? null : wireAddress(parsed);
      const hit = this.blockedAddress(address);
      if (hit !== undefined && address !== null) {
        return deepFreeze({ verdict: 'attack-blocked', rule: blockRule(`${formatIp(address)} (in the DNS answer)`, hit) });
      }
    }
    return null;
  }

  decideConnection(c: ConnectionQuery): ConnectionDecision {
    const parsed = parseIp(c.ip);
    const address = parsed === null ? null : wireAddress(parsed);
    const ipText = address === null ? c.ip : formatIp(address);
    const flow = `${destinationText(ipText, c.port)}/${c.protocol}`;
    const name = c.name === undefined ? undefined : normalizeQueryName(c.name);
    const subject = name === undefined || name === '' ? flow : `${name} (${flow})`;

    const blockedIp = this.blockedAddress(address);
    if (blockedIp !== undefined) return deepFreeze({ verdict: 'attack-blocked', rule: blockRule(ipText, blockedIp) });
    const blockedName = name === undefined ? undefined : this.blockedName(name);
    if (blockedName !== undefined && name !== undefined) {
      return deepFreeze({ verdict: 'attack-blocked', rule: blockRule(name, blockedName) });
    }

    const verdict = denyVerdict(this.mode);
    const note = modeNote(this.mode);
    if (c.protocol !== 'tcp') {
      const destination = destinationText(name !== undefined && name !== '' ? name : ipText, c.port);
      return deepFreeze({
        verdict,
        rule: {
          source: 'default-deny',
          explanation: `${subject} matches no allowed endpoint (${note}); allowed-endpoints admit only TCP`,
          suggestion: tcpOnlySuggestion(c.protocol, destination, c.port),
        },
      });
    }

    const port = c.port;
    if (port !== null && address !== null) {
      const byAddress = this.allowedNetworks.lookup(address).filter((endpoint) => endpoint.port === port);
      if (byAddress.length > 0) return deepFreeze({ verdict: 'allowed', rule: allowRule(flow, byAddress) });
    }
    const byName = name === undefined ? [] : this.allowedFor(name);
    if (port !== null && name !== undefined) {
      const onPort = byName.filter((endpoint) => endpoint.port === port);
      if (onPort.length > 0) return deepFreeze({ verdict: 'allowed', rule: allowRule(subject, onPort) });
    }

    const nameUsable = name !== undefined && checkDomain(name).ok;
    const suggestion = port === null ? undefined : addSuggestion(destinationText(nameUsable ? (name ?? ipText) : ipText, port));
    const ports = uniqueSorted(byName.map((endpoint) => endpoint.port));
    const explanation =
      name !== undefined && ports.length > 0
        ? `${name} is allowed only on port${ports.length === 1 ? '' : 's'} ${ports.join(', ')} (${byName.map((e) => e.text).join(', ')}), not ${port ?? 'an unknown port'}/tcp (${note})`
        : `${subject} matches no allowed endpoint (${note})`;
    return deepFreeze({
      verdict,
      rule: { source: 'default-deny', explanation, ...(suggestion === undefined ? {} : { suggestion }) },
    });
  }

  staticAllows(): readonly StaticAllow[] {
    return this.allows;
  }

  blockedNetworks(): readonly BlockedNetwork[] {
    return this.denies;
  }
}

/** Compiles an effective policy into its matcher; entries are re-checked, so a malformed policy is an error here, not a wrong verdict later. */
export function compilePolicy(policy: EffectivePolicy): CompiledPolicy {
  return Object.freeze(new Compiled(policy));
}
