/**
 * The nftables ruleset of one run, as text for one atomic `nft -f` batch.
 * Pure: every address that reaches this text was validated by the policy part
 * (nft resolves host names inside element lists, so nothing unvalidated may).
 */
import { parseIp } from '../../policy/index.js';
import { RunwallError, type EgressMode } from '../../protocol/index.js';
import { concatKey, type SetElement, type SetElementOperation } from '../platform/index.js';

/** NFLOG prefixes: the reader maps them back to what a packet means. */
export const LOG_PREFIX = {
  allowed: 'rw:a',
  blocked: 'rw:b',
  audit: 'rw:u',
  attack: 'rw:x',
  dnsBypass: 'rw:d',
  host: 'rw:h',
} as const;
export type LogPrefix = (typeof LOG_PREFIX)[keyof typeof LOG_PREFIX];

export interface NetworkRule {
  readonly family: 4 | 6;
  /** Address or CIDR, canonical. */
  readonly cidr: string;
}

export interface StaticAllow extends NetworkRule {
  readonly port: number;
}

export interface ResolverAddress {
  readonly family: 4 | 6;
  readonly address: string;
}

/** Where the job's traffic enters the rules: one interface (exec) or every bridge and local sockets (agent). */
export type JobScope =
  | { readonly kind: 'exec'; readonly jobInterface: string; readonly jobNet4: string; readonly jobNet6: string }
  | {
      readonly kind: 'agent';
      /** cgroup v2 path (relative to the root) of the agent, whose own sockets are exempt. */
      readonly agentCgroup: string;
      readonly agentCgroupLevel: number;
    };

/** The parts of a ruleset that come from the policy: ip/cidr allowed endpoints and block-list networks. */
export function policyNetworks(policy: {
  staticAllows(): readonly StaticAllow[];
  blockedNetworks(): readonly NetworkRule[];
}): Pick<RulesetConfig, 'staticAllows' | 'blocked'> {
  return {
    staticAllows: policy.staticAllows().map(({ family, cidr, port }) => ({ family, cidr, port })),
    blocked: policy.blockedNetworks().map(({ family, cidr }) => ({ family, cidr })),
  };
}

export interface RulesetConfig {
  readonly table: string;
  readonly mode: EgressMode;
  readonly scope: JobScope;
  readonly nflogGroup: number;
  /** Where the DNS proxy listens: the only resolver the job may reach. */
  readonly resolvers: readonly ResolverAddress[];
  readonly staticAllows: readonly StaticAllow[];
  readonly blocked: readonly NetworkRule[];
}

export const SET = {
  allow4: 'allow4',
  allow6: 'allow6',
  static4: 'static4',
  static6: 'static6',
  block4: 'block4',
  block6: 'block6',
} as const;

function q(text: string): string {
  // Interface names, prefixes and paths we generate ourselves; quoting guards the syntax only.
  return `"${text.replace(/["\\]/g, '')}"`;
}

function elements(items: readonly string[]): string {
  return items.length === 0 ? '' : ` elements = { ${items.join(', ')} }`;
}

function log(config: RulesetConfig, prefix: LogPrefix): string {
  return `log group ${config.nflogGroup} prefix ${q(prefix)}`;
}

/**
 * The chain every packet of the job's new and ongoing flows goes through.
 * Order matters: block list first (it cuts even established flows), then
 * established traffic, then DNS bypass attempts, then admitted addresses.
 */
function egressRules(config: RulesetConfig): string[] {
  const rules = [
    `ip daddr @${SET.block4} ct state new ${log(config, LOG_PREFIX.attack)}`,
    `ip daddr @${SET.block4} meta l4proto tcp reject with tcp reset`,
    `ip daddr @${SET.block4} reject with icmpx admin-prohibited`,
    `ip6 daddr @${SET.block6} ct state new ${log(config, LOG_PREFIX.attack)}`,
    `ip6 daddr @${SET.block6} meta l4proto tcp reject with tcp reset`,
    `ip6 daddr @${SET.block6} reject with icmpx admin-prohibited`,
    `ct state established,related accept`,
    // DNS and DNS-over-TLS/QUIC to anything but our proxy: dropped and reported in every mode.
    `meta l4proto { tcp, udp } th dport { 53, 853 } ${log(config, LOG_PREFIX.dnsBypass)} drop`,
    `meta l4proto tcp ip daddr . tcp dport @${SET.allow4} ${log(config, LOG_PREFIX.allowed)} accept`,
    `meta l4proto tcp ip6 daddr . tcp dport @${SET.allow6} ${log(config, LOG_PREFIX.allowed)} accept`,
    `meta l4proto tcp ip daddr . tcp dport @${SET.static4} ${log(config, LOG_PREFIX.allowed)} accept`,
    `meta l4proto tcp ip6 daddr . tcp dport @${SET.static6} ${log(config, LOG_PREFIX.allowed)} accept`,
  ];
  if (config.mode === 'block') {
    rules.push(
      `${log(config, LOG_PREFIX.blocked)}`,
      `meta l4proto tcp reject with tcp reset`,
      `reject with icmpx admin-prohibited`,
    );
  } else {
    rules.push(`${log(config, LOG_PREFIX.audit)} accept`);
  }
  return rules;
}

/** Traffic from the job to the host itself: only the resolver, neighbour discovery and replies. */
function hostRules(config: RulesetConfig): string[] {
  const rules = [
    `ct state established,related accept`,
    `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept`,
  ];
  for (const resolver of config.resolvers) {
    const match = resolver.family === 4 ? `ip daddr ${resolver.address}` : `ip6 daddr ${resolver.address}`;
    rules.push(`${match} meta l4proto { tcp, udp } th dport 53 accept`);
  }
  rules.push(`meta l4proto { tcp, udp } th dport { 53, 853 } ${log(config, LOG_PREFIX.dnsBypass)} drop`);
  if (config.mode === 'block') {
    rules.push(`${log(config, LOG_PREFIX.host)}`, `meta l4proto tcp reject with tcp reset`, `reject with icmpx admin-prohibited`);
  } else {
    rules.push(`${log(config, LOG_PREFIX.host)} accept`);
  }
  return rules;
}

function chain(name: string, header: string | null, rules: readonly string[]): string {
  const body = [header ? `    ${header}` : null, ...rules.map((rule) => `    ${rule}`)].filter((line) => line !== null);
  return `  chain ${name} {\n${body.join('\n')}\n  }`;
}

/** The whole table, created atomically (a previous table of the same name is replaced in the same batch). */
export function buildRuleset(config: RulesetConfig): string {
  const static4 = config.staticAllows.filter((a) => a.family === 4).map((a) => `${a.cidr} . ${a.port}`);
  const static6 = config.staticAllows.filter((a) => a.family === 6).map((a) => `${a.cidr} . ${a.port}`);
  const block4 = config.blocked.filter((b) => b.family === 4).map((b) => b.cidr);
  const block6 = config.blocked.filter((b) => b.family === 6).map((b) => b.cidr);
  const sets = [
    `  set ${SET.allow4} { type ipv4_addr . inet_service; flags timeout; }`,
    `  set ${SET.allow6} { type ipv6_addr . inet_service; flags timeout; }`,
    `  set ${SET.static4} { type ipv4_addr . inet_service; flags interval;${elements(static4)} }`,
    `  set ${SET.static6} { type ipv6_addr . inet_service; flags interval;${elements(static6)} }`,
    `  set ${SET.block4} { type ipv4_addr; flags interval; auto-merge;${elements(block4)} }`,
    `  set ${SET.block6} { type ipv6_addr; flags interval; auto-merge;${elements(block6)} }`,
  ];
  const chains: string[] = [chain('job_egress', null, egressRules(config)), chain('job_host', null, hostRules(config))];
  const scope = config.scope;
  if (scope.kind === 'exec') {
    const jobIf = q(scope.jobInterface);
    chains.push(
      chain('forward', 'type filter hook forward priority filter - 10; policy accept;', [
        `iifname ${jobIf} jump job_egress`,
        // Nothing from outside may open a connection into the job.
        `oifname ${jobIf} ct state established,related accept`,
        `oifname ${jobIf} drop`,
      ]),
      chain('input', 'type filter hook input priority filter - 10; policy accept;', [`iifname ${jobIf} jump job_host`]),
      chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [
        `ip saddr ${scope.jobNet4} oifname != ${jobIf} masquerade`,
        `ip6 saddr ${scope.jobNet6} oifname != ${jobIf} masquerade`,
      ]),
    );
  } else {
    const exempt = `socket cgroupv2 level ${scope.agentCgroupLevel} ${q(scope.agentCgroup)}`;
    chains.push(
      chain('output', 'type filter hook output priority filter - 10; policy accept;', [
        `oifname "lo" accept`,
        `${exempt} accept`,
        `jump job_egress`,
      ]),
      chain('forward', 'type filter hook forward priority filter - 10; policy accept;', [`jump job_egress`]),
    );
  }
  return [
    `table inet ${config.table}`,
    `delete table inet ${config.table}`,
    `table inet ${config.table} {\n${[...sets, ...chains].join('\n')}\n}`,
  ].join('\n');
}

/** One element to admit: its address and port, for how long, and whether it may already be in the set. */
export interface AdmitElement {
  readonly family: 4 | 6;
  readonly ip: string;
  readonly port: number;
  readonly timeoutSeconds: number;
  /** The element may be there with a shorter timeout, which an `add` would keep. */
  readonly refresh: boolean;
}

/** nft takes whole seconds; both paths round the same way. */
function timeoutSecondsOf(a: AdmitElement): number {
  return Math.max(1, Math.ceil(a.timeoutSeconds));
}

/** Elements admitted from one DNS answer, as one batch of commands (libnftables). */
export function admitCommands(table: string, admissions: readonly AdmitElement[]): string {
  const lines: string[] = [];
  for (const a of admissions) {
    const set = a.family === 4 ? SET.allow4 : SET.allow6;
    const key = `${a.ip} . ${a.port}`;
    if (a.refresh) {
      // An existing element keeps its old timeout on `add`: add (so delete cannot fail), delete, add anew.
      lines.push(`add element inet ${table} ${set} { ${key} }`, `delete element inet ${table} ${set} { ${key} }`);
    }
    lines.push(`add element inet ${table} ${set} { ${key} timeout ${timeoutSecondsOf(a)}s }`);
  }
  return lines.join('\n');
}

/**
 * The same admissions as set-element operations for one netlink batch, with the
 * same refresh: add without a timeout (so the delete cannot fail), delete, add
 * anew with the timeout. RW_NFT_FAILED for an address that is not one of its family.
 */
export function admitOperations(admissions: readonly AdmitElement[]): SetElementOperation[] {
  const operations: SetElementOperation[] = [];
  for (const family of [4, 6] as const) {
    const set = family === 4 ? SET.allow4 : SET.allow6;
    const fresh: SetElement[] = [];
    const stale: SetElement[] = [];
    for (const a of admissions) {
      if (a.family !== family) continue;
      const address = parseIp(a.ip);
      if (address === null || address.family !== family) {
        throw new RunwallError('RW_NFT_FAILED', `cannot admit ${JSON.stringify(a.ip)}: not an IPv${family} address`, { ip: a.ip });
      }
      const key = concatKey(address.bytes, a.port);
      const label = `${a.ip} . ${a.port}`;
      if (a.refresh) stale.push({ key, label });
      fresh.push({ key, label, timeoutMs: timeoutSecondsOf(a) * 1000 });
    }
    if (stale.length > 0) operations.push({ kind: 'add', set, elements: stale }, { kind: 'delete', set, elements: stale });
    if (fresh.length > 0) operations.push({ kind: 'add', set, elements: fresh });
  }
  return operations;
}

/**
 * What a machine is left with when the agent cannot start (or could not
 * restore its rules) in block mode: nothing leaves but loopback, and every
 * attempt is still logged for whoever reads the group.
 */
export function buildLockdownRuleset(table: string, nflogGroup: number): string {
  const deny = [`log group ${nflogGroup} prefix ${q(LOG_PREFIX.blocked)}`, `meta l4proto tcp reject with tcp reset`, `reject with icmpx admin-prohibited`];
  return [
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {\n${[
      chain('output', 'type filter hook output priority filter - 10; policy accept;', [`oifname "lo" accept`, `ct state established,related accept`, ...deny]),
      chain('forward', 'type filter hook forward priority filter - 10; policy accept;', [`ct state established,related accept`, ...deny]),
    ].join('\n')}\n}`,
  ].join('\n');
}
