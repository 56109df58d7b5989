/** The run summary: where the job went, how often, with which verdict, and the run's worst verdict. */
import type { DestinationSummary, ProcessRef, RunEvent, RunSummary, TransportProtocol, Verdict } from '../protocol/index.js';
import { normalizeQueryName } from './compile.js';
import { deepFreeze } from './freeze.js';
import { canonicalIp, formatIp, parseIp, wireAddress } from './ip.js';
import { eventChains } from './process-tree.js';

const SEVERITY: Readonly<Record<Verdict, number>> = { 'attack-blocked': 3, blocked: 2, audit: 1, allowed: 0 };

/** attack-blocked > blocked > audit > allowed. */
export function worseVerdict(a: Verdict, b: Verdict): Verdict {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

/** An address as the report shows it: canonical, IPv4-mapped shown as IPv4; anything else as given. */
export function displayAddress(value: string): string {
  const parsed = parseIp(value);
  return parsed === null ? value : formatIp(wireAddress(parsed));
}

/** The HTTP Host of an event without brackets or port; an address literal in canonical form. */
export function httpHostName(host: string): string {
  let bare = host;
  if (bare.startsWith('[')) bare = bare.slice(1, bare.indexOf(']') === -1 ? undefined : bare.indexOf(']'));
  else if (bare.split(':').length === 2) bare = bare.slice(0, bare.indexOf(':'));
  return canonicalIp(bare) === null ? normalizeQueryName(bare) : displayAddress(bare);
}

export function processLabel(process: ProcessRef | undefined): string | undefined {
  if (process === undefined) return undefined;
  return process.exe ?? `pid:${process.pid}`;
}

interface Group {
  name: string;
  port: number | null;
  protocol: TransportProtocol | 'dns';
  verdict: Verdict;
  count: number;
  addresses: Set<string>;
  processes: Set<string>;
  chains: Set<string>;
}

function compareDestinations(a: DestinationSummary, b: DestinationSummary): number {
  return (
    SEVERITY[b.verdict] - SEVERITY[a.verdict] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.port ?? -1) - (b.port ?? -1) ||
    (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0)
  );
}

/**
 * One destination per (name-or-address, port, protocol, verdict) from
 * connection and http events, plus DNS names the job never connected to;
 * verdict counts over all events (a folded connection or http event counts `count` times).
 */
export function summarizeEvents(events: readonly RunEvent[]): RunSummary {
  const groups = new Map<string, Group>();
  const add = (
    name: string,
    port: number | null,
    protocol: Group['protocol'],
    verdict: Verdict,
    count: number,
    addresses: readonly string[],
    process: ProcessRef | undefined,
    chains: readonly string[],
  ): void => {
    const key = JSON.stringify([name, port, protocol, verdict]);
    let group = groups.get(key);
    if (group === undefined) {
      group = { name, port, protocol, verdict, count: 0, addresses: new Set(), processes: new Set(), chains: new Set() };
      groups.set(key, group);
    }
    group.count += count;
    for (const address of addresses) group.addresses.add(address);
    const label = processLabel(process);
    if (label !== undefined) group.processes.add(label);
    for (const chain of chains) group.chains.add(chain);
  };

  const counts = { events: events.length, allowed: 0, blocked: 0, attackBlocked: 0, audit: 0, detections: 0 };
  let verdict: Verdict = 'allowed';
  const tally = (v: Verdict, n: number): void => {
    if (v === 'attack-blocked') counts.attackBlocked += n;
    else counts[v] += n;
    verdict = worseVerdict(verdict, v);
  };

  const reachedNames = new Set<string>();
  for (const event of events) {
    if (event.kind === 'connection') {
      const address = displayAddress(event.destination);
      const name = event.name === undefined ? address : normalizeQueryName(event.name);
      if (event.name !== undefined) reachedNames.add(name);
      add(name, event.port, event.protocol, event.verdict, event.count, [address], event.process, eventChains(event));
      tally(event.verdict, event.count);
    } else if (event.kind === 'http') {
      const name = httpHostName(event.host);
      reachedNames.add(name);
      const count = event.count ?? 1;
      add(name, event.port, 'tcp', event.verdict, count, [displayAddress(event.destination)], event.process, eventChains(event));
      tally(event.verdict, count);
    } else if (event.kind === 'dns') {
      tally(event.verdict, event.count ?? 1);
    } else if (event.kind === 'detection') {
      counts.detections += 1;
    }
  }
  for (const event of events) {
    if (event.kind !== 'dns') continue;
    const name = normalizeQueryName(event.name);
    if (reachedNames.has(name)) continue;
    const answers = event.answers.filter((answer) => canonicalIp(answer.data) !== null).map((answer) => displayAddress(answer.data));
    add(name, null, 'dns', event.verdict, event.count ?? 1, answers, event.process, eventChains(event));
  }

  const destinations: DestinationSummary[] = [...groups.values()].map((group) => ({
    name: group.name,
    addresses: [...group.addresses].sort(),
    port: group.port,
    protocol: group.protocol,
    count: group.count,
    verdict: group.verdict,
    processes: [...group.processes].sort(),
    chains: [...group.chains].sort(),
  }));
  destinations.sort(compareDestinations);
  return deepFreeze({ destinations, counts, verdict });
}
