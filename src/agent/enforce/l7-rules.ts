/**
 * The iptables rules that hand the first packets of each TCP flow to runwall's
 * NFQUEUE reader for the TLS SNI / HTTP Host check. Pure: text for
 * `iptables-restore --noflush` and argument lists for removal.
 *
 * Why iptables: this kernel has no nft `queue` statement (CONFIG_NFT_QUEUE),
 * the iptables-nft `-j NFQUEUE` compat target works. The filter table runs
 * after runwall's nft table (priority filter - 10), so only flows the firewall
 * already admitted get here.
 *
 * How a verdict sticks to a flow (a plain DROP would only make TCP retransmit):
 *   - the reader answers NF_REPEAT with a packet mark: SEEN plus PASS or DENY
 *     (SEEN alone while the flow is still undecided);
 *   - the packet runs through the chain again; SEEN sends it to the `S` chain,
 *     which saves PASS/DENY into the connection mark, clears runwall's bits from
 *     the packet, and resets a DENY flow;
 *   - later packets of a PASS flow return at the first connmark test (nothing
 *     else on the data path); a DENY flow's packets are reset.
 * A SYN clears the connection mark first: a reopened conntrack entry is a new flow.
 * Only packets 1-32 of a flow in the client's direction are queued (connbytes),
 * so flows that existed before the rules, and long server-push flows, are
 * never held; a SYN carrying data (TCP Fast Open) is queued too.
 *
 * Fail closed: block mode never says --queue-bypass, so with no reader bound
 * the kernel drops what these rules queue and such flows fail. Audit mode
 * says --queue-bypass: a dead agent in audit mode must not break the job.
 */
import type { EgressMode } from '../../protocol/index.js';

/** Packet/connection mark bits runwall owns; other software using them (Calico's default 0xffff0000) would clash. */
export const L7_MARK = Object.freeze({
  seen: 0x0100_0000,
  pass: 0x0200_0000,
  deny: 0x0400_0000,
  /** The bits the connection mark keeps. */
  state: 0x0600_0000,
  all: 0x0700_0000,
});

/** Client-direction packets of a flow that may be queued; a start not decided by then passes. */
export const L7_QUEUED_PACKETS = 32;

export type L7Scope =
  /** `runwall exec`: the job's traffic arrives on the host side of its veth, in FORWARD. */
  | { readonly kind: 'exec'; readonly runId: string; readonly jobInterface: string }
  /** `runwall agent`: the machine's own sockets (OUTPUT) and its containers (FORWARD); the agent's cgroup is exempt. */
  | { readonly kind: 'agent'; readonly agentCgroup: string };

export interface L7RulesConfig {
  readonly scope: L7Scope;
  readonly queue: number;
  readonly mode: EgressMode;
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

export function l7ChainNames(scope: L7Scope): { readonly main: string; readonly seen: string; readonly output: string } {
  const id = scope.kind === 'exec' ? scope.runId : 'agent';
  return { main: `RWL7-${id}`, seen: `RWL7S-${id}`, output: `RWL7O-${id}` };
}

/** The jumps from the built-in chains into runwall's chain, as `-I CHAIN 1 ...` arguments after the chain name. */
function jumps(config: L7RulesConfig): { chain: 'FORWARD' | 'OUTPUT'; spec: string[] }[] {
  const { main, output } = l7ChainNames(config.scope);
  const scope = config.scope;
  if (scope.kind === 'exec') return [{ chain: 'FORWARD', spec: ['-i', scope.jobInterface, '-p', 'tcp', '-j', main] }];
  return [
    // Local sockets pass through a chain of their own first: the cgroup match is refused in a chain FORWARD reaches.
    { chain: 'OUTPUT', spec: ['!', '-o', 'lo', '-p', 'tcp', '-j', output] },
    { chain: 'FORWARD', spec: ['-p', 'tcp', '-j', main] },
  ];
}

function quoteArg(arg: string): string {
  // Interface names, chain names and the cgroup path are runwall's own; quoting guards the syntax only.
  return /^[A-Za-z0-9_.:/!+-]+$/.test(arg) ? arg : `"${arg.replace(/["\\]/g, '')}"`;
}

/** Input for `iptables-restore --noflush` (and ip6tables-restore: the rules are the same for both families). */
export function l7RestoreText(config: L7RulesConfig): string {
  const { main, seen, output } = l7ChainNames(config.scope);
  const state = hex(L7_MARK.state);
  const bypass = config.mode === 'audit' ? ' --queue-bypass' : '';
  const lines = [
    '*filter',
    // In --noflush mode a chain line creates the chain, or empties it when a crashed run left it.
    `:${main} - [0:0]`,
    `:${seen} - [0:0]`,
    ...(config.scope.kind === 'agent' ? [`:${output} - [0:0]`] : []),
    ...jumps(config).map(({ chain, spec }) => `-I ${chain} 1 ${spec.map(quoteArg).join(' ')}`),
  ];
  if (config.scope.kind === 'agent') {
    // The agent's own sockets (its DNS upstream, its uploads) are not the job's: exempt by cgroup, as in the nft table.
    lines.push(`-A ${output} -m cgroup --path ${quoteArg(config.scope.agentCgroup)} -j RETURN`, `-A ${output} -j ${main}`);
  }
  lines.push(
    `-A ${main} -m mark --mark ${hex(L7_MARK.seen)}/${hex(L7_MARK.seen)} -g ${seen}`,
    // The data path of a passed flow ends here, at the second rule.
    `-A ${main} -p tcp ! --syn -m connmark --mark ${hex(L7_MARK.pass)}/${state} -j RETURN`,
    // A SYN may reopen a conntrack entry whose old flow was judged (the kernel reuses an entry a reset left behind):
    // the new flow starts unjudged, or it would inherit the old PASS and skip the check.
    `-A ${main} -p tcp --syn -j CONNMARK --set-xmark 0x0/${state}`,
    `-A ${main} -p tcp -m connmark --mark ${hex(L7_MARK.deny)}/${state} -j REJECT --reject-with tcp-reset`,
    `-A ${main} -p tcp -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL -m connbytes --connbytes 0:${L7_QUEUED_PACKETS} --connbytes-dir original --connbytes-mode packets -j NFQUEUE --queue-num ${config.queue}${bypass}`,
    // TCP Fast Open: the ClientHello may ride on the SYN (option 34).
    `-A ${main} -p tcp --syn -m tcp --tcp-option 34 -j NFQUEUE --queue-num ${config.queue}${bypass}`,
    `-A ${seen} -j CONNMARK --save-mark --nfmask ${state} --ctmask ${state}`,
    `-A ${seen} -j MARK --set-xmark 0x0/${hex(L7_MARK.all)}`,
    `-A ${seen} -p tcp -m connmark --mark ${hex(L7_MARK.deny)}/${state} -j REJECT --reject-with tcp-reset`,
    'COMMIT',
    '',
  );
  return lines.join('\n');
}

/** iptables argument lists that undo l7RestoreText, in order; each may fail (already gone) without stopping the rest. */
export function l7RemovalCommands(scope: L7Scope): string[][] {
  const { main, seen, output } = l7ChainNames(scope);
  const config: L7RulesConfig = { scope, queue: 0, mode: 'block' };
  const chains = scope.kind === 'agent' ? [output, main, seen] : [main, seen];
  return [
    ...jumps(config).map(({ chain, spec }) => ['-t', 'filter', '-D', chain, ...spec]),
    ...chains.map((chain) => ['-t', 'filter', '-F', chain]),
    ...chains.map((chain) => ['-t', 'filter', '-X', chain]),
  ];
}

/**
 * Input for `iptables-restore --noflush` that removes what `save` (`iptables-save -t filter`
 * output) holds of a run's rules: every rule elsewhere that jumps or goes to one of its
 * chains (each copy, however it was added), then its chains, emptied and deleted.
 * Empty when none of it is there. One restore instead of a dozen iptables processes.
 */
export function l7RemovalRestoreText(save: string, scope: L7Scope): string {
  const ours = new Set(Object.values(l7ChainNames(scope)));
  const present = new Set<string>();
  const jumps: string[] = [];
  for (const line of save.split('\n')) {
    const chain = /^:(\S+) /.exec(line)?.[1];
    if (chain !== undefined && ours.has(chain)) present.add(chain);
    const rule = /^-A (\S+)((?: .*)?) (-[jg]) (\S+)$/.exec(line);
    if (rule && ours.has(rule[4] ?? '') && !ours.has(rule[1] ?? '')) jumps.push(`-D ${rule[1]}${rule[2]} ${rule[3]} ${rule[4]}`);
  }
  if (present.size === 0 && jumps.length === 0) return '';
  const chains = [...present].sort();
  return ['*filter', ...jumps, ...chains.map((chain) => `-F ${chain}`), ...chains.map((chain) => `-X ${chain}`), 'COMMIT', ''].join('\n');
}

/**
 * Whether the rules are still in place, from `iptables-save -t filter` output:
 * every chain holds the rules it was given and every jump into it is there.
 * (A root job on an agent's machine could delete them: the check would be off.)
 */
export function l7RulesIntact(save: string, config: L7RulesConfig): { intact: true } | { intact: false; problem: string } {
  const lines = save.split('\n');
  const expected = l7RestoreText(config).split('\n');
  const { main, seen, output } = l7ChainNames(config.scope);
  const chains = config.scope.kind === 'agent' ? [main, seen, output] : [main, seen];
  for (const chain of chains) {
    const want = expected.filter((line) => line.startsWith(`-A ${chain} `)).length;
    const have = lines.filter((line) => line.startsWith(`-A ${chain} `)).length;
    if (have !== want) return { intact: false, problem: `iptables chain ${chain} holds ${have} of its ${want} rules` };
  }
  for (const { chain, spec } of jumps(config)) {
    const target = spec[spec.length - 1] ?? '';
    if (!lines.some((line) => line.startsWith(`-A ${chain} `) && line.endsWith(` -j ${target}`))) {
      return { intact: false, problem: `the jump from ${chain} into ${target} is gone` };
    }
  }
  return { intact: true };
}

/** The mark a verdict gives a packet: runwall's bits replaced, the rest of the packet's mark kept. */
export function l7VerdictMark(packetMark: number, state: 'pass' | 'deny' | 'undecided'): number {
  const bits = L7_MARK.seen | (state === 'pass' ? L7_MARK.pass : state === 'deny' ? L7_MARK.deny : 0);
  return ((packetMark & ~L7_MARK.all) | bits) >>> 0;
}
