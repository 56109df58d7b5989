/** The run summary: where the job went, how often, with which verdict, and the run's worst verdict. */
import type { DestinationSummary, ProcessRef, RunEvent, RunSummary, TransportProtocol, Verdict } from '../protocol/index.js';
import { normalizeQueryName } from './compile.js';
import { deepFreeze } from './freeze.js';
import { canonicalIp, formatIp, parseIp, wireAddress } from './ip.js';
import { processChain } from './process-tree.js';

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

/**
 * A few distinct texts: nothing, one, a short list, or past FEW_MAX a Set. A
 * destination names one or two addresses and processes; a Set for each of
 * thousands of destinations was most of the summary's memory.
 */
type FewTexts = undefined | string | string[] | Set<string>;
const FEW_MAX = 16;

function withText(few: FewTexts, text: string): FewTexts {
  if (few === undefined) return text;
  if (typeof few === 'string') return few === text ? few : [few, text];
  if (few instanceof Set) return few.add(text);
  if (few.includes(text)) return few;
  if (few.length < FEW_MAX) {
    few.push(text);
    return few;
  }
  return new Set([...few, text]);
}

function sortedTexts(few: FewTexts): string[] {
  if (few === undefined) return [];
  if (typeof few === 'string') return [few];
  return [...few].sort();
}

interface Group {
  readonly name: string;
  readonly port: number | null;
  readonly protocol: TransportProtocol | 'dns';
  readonly verdict: Verdict;
  count: number;
  addresses: FewTexts;
  processes: FewTexts;
  chains: FewTexts;
}

function compareDestinations(a: DestinationSummary, b: DestinationSummary): number {
  return (
    SEVERITY[b.verdict] - SEVERITY[a.verdict] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.port ?? -1) - (b.port ?? -1) ||
    (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0)
  );
}

function groupKey(name: string, port: number | null, protocol: Group['protocol'], verdict: Verdict): string {
  return JSON.stringify([name, port, protocol, verdict]);
}

function newGroup(name: string, port: number | null, protocol: Group['protocol'], verdict: Verdict): Group {
  return { name, port, protocol, verdict, count: 0, addresses: undefined, processes: undefined, chains: undefined };
}

/**
 * The run summary built one event at a time, so a run's events need not be
 * held to summarize them: it keeps one small group per destination, not one
 * entry per event. One destination per (name-or-address, port, protocol,
 * verdict) from connection and http events, plus DNS names the job never
 * connected to; verdict counts over all events (a folded event counts
 * `count` times).
 */
export class RunSummaryBuilder {
  readonly #groups = new Map<string, Group>();
  /** DNS-only destinations by name (one per verdict seen), until a connection or request reaches the name (then dropped for good). */
  readonly #dnsGroups = new Map<string, Group | Group[]>();
  readonly #reachedNames = new Set<string>();
  /** One copy of each label, chain and address: thousands of destinations name the same few processes, and share addresses (a CDN's, a wildcard's). */
  readonly #texts = new Map<string, string>();
  /** A process's chain, and the same marked ambiguous, by the process: events of one call share one ProcessRef. */
  readonly #chains = new WeakMap<ProcessRef, { plain?: string; ambiguous?: string }>();
  readonly #counts = { events: 0, allowed: 0, blocked: 0, attackBlocked: 0, audit: 0, detections: 0 };
  #verdict: Verdict = 'allowed';

  add(event: RunEvent): void {
    this.#counts.events += 1;
    if (event.kind === 'connection') {
      const address = displayAddress(event.destination);
      const name = event.name === undefined ? address : normalizeQueryName(event.name);
      if (event.name !== undefined) this.#reach(name);
      const group = this.#group(name, event.port, event.protocol, event.verdict);
      this.#addTo(group, event.count, event);
      this.#addAddress(group, address);
      this.#tally(event.verdict, event.count);
    } else if (event.kind === 'http') {
      const name = httpHostName(event.host);
      this.#reach(name);
      const count = event.count ?? 1;
      const group = this.#group(name, event.port, 'tcp', event.verdict);
      this.#addTo(group, count, event);
      this.#addAddress(group, displayAddress(event.destination));
      this.#tally(event.verdict, count);
    } else if (event.kind === 'dns') {
      const count = event.count ?? 1;
      this.#tally(event.verdict, count);
      const name = normalizeQueryName(event.name);
      if (this.#reachedNames.has(name)) return;
      const group = this.#dnsGroup(name, event.verdict);
      this.#addTo(group, count, event);
      for (const answer of event.answers) if (canonicalIp(answer.data) !== null) this.#addAddress(group, displayAddress(answer.data));
    } else if (event.kind === 'detection') {
      this.#counts.detections += 1;
    }
  }

  finish(): RunSummary {
    const groups = [...this.#groups.values(), ...[...this.#dnsGroups.values()].flat()];
    const destinations: DestinationSummary[] = groups.map((group) => ({
      name: group.name,
      addresses: sortedTexts(group.addresses),
      port: group.port,
      protocol: group.protocol,
      count: group.count,
      verdict: group.verdict,
      processes: sortedTexts(group.processes),
      chains: sortedTexts(group.chains),
    }));
    destinations.sort(compareDestinations);
    return deepFreeze({ destinations, counts: { ...this.#counts }, verdict: this.#verdict });
  }

  #reach(name: string): void {
    this.#reachedNames.add(name);
    this.#dnsGroups.delete(name);
  }

  #group(name: string, port: number | null, protocol: Group['protocol'], verdict: Verdict): Group {
    const key = groupKey(name, port, protocol, verdict);
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = newGroup(name, port, protocol, verdict);
      this.#groups.set(key, group);
    }
    return group;
  }

  #dnsGroup(name: string, verdict: Verdict): Group {
    const known = this.#dnsGroups.get(name);
    if (known === undefined) {
      const group = newGroup(name, null, 'dns', verdict);
      this.#dnsGroups.set(name, group);
      return group;
    }
    const list = Array.isArray(known) ? known : [known];
    const found = list.find((group) => group.verdict === verdict);
    if (found !== undefined) return found;
    const group = newGroup(name, null, 'dns', verdict);
    this.#dnsGroups.set(name, [...list, group]);
    return group;
  }

  #addAddress(group: Group, address: string): void {
    group.addresses = withText(group.addresses, this.#text(address));
  }

  #addTo(group: Group, count: number, event: { readonly process?: ProcessRef | undefined; readonly processCandidates?: readonly ProcessRef[] | undefined }): void {
    group.count += count;
    const label = processLabel(event.process);
    if (label !== undefined) group.processes = withText(group.processes, this.#text(label));
    // As eventChains() names them: the process, or each candidate marked ambiguous.
    if (event.process) group.chains = withText(group.chains, this.#chainOf(event.process, 'plain'));
    else for (const candidate of event.processCandidates ?? []) group.chains = withText(group.chains, this.#chainOf(candidate, 'ambiguous'));
  }

  #chainOf(process: ProcessRef, form: 'plain' | 'ambiguous'): string {
    let known = this.#chains.get(process);
    if (known === undefined) {
      known = {};
      this.#chains.set(process, known);
    }
    return (known[form] ??= this.#text(form === 'plain' ? processChain(process) : `${processChain(process)} (ambiguous)`));
  }

  #text(text: string): string {
    const known = this.#texts.get(text);
    if (known !== undefined) return known;
    this.#texts.set(text, text);
    return text;
  }

  #tally(verdict: Verdict, count: number): void {
    if (verdict === 'attack-blocked') this.#counts.attackBlocked += count;
    else this.#counts[verdict] += count;
    this.#verdict = worseVerdict(this.#verdict, verdict);
  }
}

export function summarizeEvents(events: readonly RunEvent[]): RunSummary {
  const builder = new RunSummaryBuilder();
  for (const event of events) builder.add(event);
  return builder.finish();
}
