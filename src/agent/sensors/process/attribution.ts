/**
 * Which process caused a `dns`, `connection` or `http` event. Pure.
 *
 * How exact it is: audit reports every connect() to an IPv4/IPv6 address with
 * the caller's pid and the destination address and port, stamped with the
 * time the call was made — but not the source port,
 * which is what the firewall's log (NFLOG) has. So an event is joined to the
 * calls made to its destination (address and port; DNS: port 53) in a short
 * window around the event's time. One calling process: the attribution is
 * exact. Several different processes reaching the same destination within
 * the window (or a folded event whose attempts came from several processes):
 * all of them are put on the event as `processCandidates`, nothing is guessed.
 * No call: the event has no process (UDP sent without connect(), as musl's
 * resolver and ping do: runwall does not audit every packet; the call's record
 * was lost; or a blocking connect to a destination that drops packets has not
 * returned yet: audit reports a call when it returns).
 */
import type { ProcessRef, UnsequencedEvent } from '../../../protocol/index.js';
import type { ProcessRecord, ProcessRegistry } from './process-table.js';
import { toolName } from './tool-name.js';
import { clientAddress } from '../../dns/index.js';
import { withFields } from '../../with-fields.js';

export interface SocketCall {
  readonly pid: number;
  readonly timeMs: number;
  readonly address: string;
  readonly port: number;
  readonly inJob: boolean;
  /**
   * The caller's network namespace (the inode /proc/PID/ns/net names) as read when the call was
   * handled; null: not known (exec scope does not read it; the process was already gone).
   */
  readonly netns: number | null;
  /**
   * The caller as it was when it made the call (a later exec does not change
   * it), or a function that builds it: most calls are never looked up, so the
   * sensor describes them only when they are.
   */
  readonly ref: ProcessRef | (() => ProcessRef);
}

export interface SocketCallQuery {
  /** null: any address (DNS: whichever resolver the process used). */
  readonly address: string | null;
  readonly port: number;
  readonly fromMs: number;
  readonly toMs: number;
  /** Only calls made in this network namespace, or in any other; a call whose namespace is not known always counts. */
  readonly netns?: NetnsFilter;
}

export type NetnsFilter = { readonly inside: number } | { readonly outside: number };

/**
 * Agent scope: the network namespace the agent governs (its own) and whether an address is one of
 * that namespace's. A packet from one of its own addresses (loopback included: it never crosses
 * namespaces) was sent by a process inside it; any other came through it from another namespace
 * (a container behind a bridge). Without this, audit's calls from every namespace on the machine
 * competed: a `dig` in an unrelated namespace became a candidate for the job's own queries.
 */
export interface GovernedNetns {
  readonly inode: number;
  readonly isOwnAddress: (address: string) => boolean;
}

export function isLoopbackAddress(address: string): boolean {
  const plain = plainAddress(address);
  return plain === '::1' || /^127\./.test(plain);
}

function netnsFilterOf(event: UnsequencedEvent, governed: GovernedNetns | null): NetnsFilter | undefined {
  if (governed === null) return undefined;
  // A DNS client as the proxy writes it, without its port and an IPv6 address's brackets.
  const source = event.kind === 'dns' ? clientAddress(event.client).replace(/^\[(.*)\]$/, '$1') : event.kind === 'connection' ? event.source : undefined;
  if (source === undefined) return undefined;
  return governed.isOwnAddress(plainAddress(source)) ? { inside: governed.inode } : { outside: governed.inode };
}

/** IPv4-mapped IPv6 (a dual-stack socket reaching an IPv4 address) as the firewall logs it: IPv4. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

interface LoggedCall extends SocketCall {
  /** Order of arrival: calls below the log's first live one are evicted. */
  readonly seq: number;
}

/**
 * The calls to one destination port in the order of their time. Audit's order is nearly
 * that; a record that comes late (a connect that took long to return is stamped at entry)
 * is moved back into place. A look-up is then a binary search and a scan of its window
 * only: scanning a margin past the window made a burst of N connections cost N² (3,000
 * HTTPS requests in a few seconds: 9 million steps, a third of a second of the event loop).
 */
class CallsInTimeOrder {
  readonly items: LoggedCall[] = [];
  /** Entries before it were evicted. */
  start = 0;

  get empty(): boolean {
    return this.start >= this.items.length;
  }

  insert(call: LoggedCall): void {
    const items = this.items;
    let at = items.length;
    items.push(call);
    while (at > this.start && items[at - 1]!.timeMs > call.timeMs) {
      items[at] = items[at - 1]!;
      at -= 1;
    }
    items[at] = call;
  }

  /** Index just past the last call made at or before `timeMs`. */
  endOf(timeMs: number): number {
    let low = this.start;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.items[middle]!.timeMs <= timeMs) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Forgets evicted calls at the front (one that came late may sit behind a live one for a while: look-ups skip it). */
  dropEvicted(firstLiveSeq: number): void {
    while (!this.empty && this.items[this.start]!.seq < firstLiveSeq) this.start += 1;
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items.splice(0, this.start);
      this.start = 0;
    }
  }
}

/** Recent socket calls by destination port; bounded in count and age so a busy machine cannot grow it without end. */
export class SocketCallLog {
  readonly #byPort = new Map<number, CallsInTimeOrder>();
  /** Every call in order of arrival, for eviction. */
  readonly #order: LoggedCall[] = [];
  #head = 0;
  #nextSeq = 0;
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;

  constructor(maxEntries = 50_000, maxAgeMs = 120_000) {
    this.#maxEntries = maxEntries;
    this.#maxAgeMs = maxAgeMs;
  }

  get size(): number {
    return this.#order.length - this.#head;
  }

  add(call: SocketCall): void {
    const stored: LoggedCall = withFields(call, { address: plainAddress(call.address), seq: this.#nextSeq++ });
    let calls = this.#byPort.get(stored.port);
    if (!calls) {
      calls = new CallsInTimeOrder();
      this.#byPort.set(stored.port, calls);
    }
    calls.insert(stored);
    this.#order.push(stored);
    this.#evict(stored.timeMs);
  }

  /**
   * The distinct processes (by pid, the call nearest the window's end kept)
   * that made a matching call; only in-job ones when there are any.
   */
  find(query: SocketCallQuery): ProcessRef[] {
    const calls = this.#byPort.get(query.port);
    if (!calls) return [];
    const address = query.address === null ? null : plainAddress(query.address);
    const netns = query.netns;
    const firstLive = this.#firstLiveSeq();
    const found = new Map<number, SocketCall>();
    // Newest first, from the window's end back to its start.
    for (let i = calls.endOf(query.toMs) - 1; i >= calls.start; i--) {
      const call = calls.items[i]!;
      if (call.timeMs < query.fromMs) break;
      if (call.seq < firstLive) continue;
      if (address !== null && call.address !== address) continue;
      if (netns !== undefined && call.netns !== null && ('inside' in netns ? call.netns !== netns.inside : call.netns === netns.outside)) continue;
      if (!found.has(call.pid)) found.set(call.pid, call);
    }
    const matched = [...found.values()];
    const inJob = matched.filter((call) => call.inJob);
    return (inJob.length > 0 ? inJob : matched).sort((a, b) => a.timeMs - b.timeMs || a.pid - b.pid).map((call) => (typeof call.ref === 'function' ? call.ref() : call.ref));
  }

  #firstLiveSeq(): number {
    return this.#order[this.#head]?.seq ?? this.#nextSeq;
  }

  #evict(nowMs: number): void {
    while (this.size > 0) {
      const oldest = this.#order[this.#head]!;
      if (this.size <= this.#maxEntries && nowMs - oldest.timeMs <= this.#maxAgeMs) break;
      this.#head += 1;
      const calls = this.#byPort.get(oldest.port);
      if (calls) {
        calls.dropEvicted(this.#firstLiveSeq());
        if (calls.empty) this.#byPort.delete(oldest.port);
      }
    }
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/**
 * The process and its ancestry up to the job's root, as events carry it.
 * `program` fixes what it ran (at the time of a call) when that may since have changed.
 */
export function processRefOf(
  table: ProcessRegistry,
  record: ProcessRecord,
  program: { readonly exe: string | null; readonly argv: readonly string[] } = record,
): ProcessRef {
  const ref: { -readonly [K in keyof ProcessRef]: ProcessRef[K] } = { pid: record.pid, ppid: record.ppid };
  if (program.exe !== null) ref.exe = program.exe;
  if (program.argv.length > 0) ref.argv = [...program.argv];
  const name = toolName(program.exe, program.argv);
  if (name !== null) ref.name = name;
  ref.ancestry = table.ancestorsOf(record).map((ancestor) => {
    const entry: { pid: number; exe?: string; name?: string } = { pid: ancestor.pid };
    if (ancestor.exe !== null) entry.exe = ancestor.exe;
    const ancestorName = toolName(ancestor.exe, ancestor.argv);
    if (ancestorName !== null) entry.name = ancestorName;
    return entry;
  });
  return ref;
}

/**
 * How far around an event's time its calls are looked for (ms before, after):
 * first close by, then, when nothing is there (a loaded machine delays the
 * event), wider. The close window keeps an earlier, unrelated caller of the
 * same destination from making a clear case ambiguous.
 */
export const ATTRIBUTION_WINDOWS = {
  /** The query is sent right after the connect, and the resolver sees it a moment later. */
  dns: [
    { beforeMs: 200, afterMs: 100 },
    { beforeMs: 2_000, afterMs: 100 },
  ],
  /** The event carries the first packet's time; folded attempts follow within the fold window (500 ms). */
  connection: [
    { beforeMs: 200, afterMs: 700 },
    { beforeMs: 2_000, afterMs: 700 },
  ],
  /** A TLS ClientHello may come long after the connect. */
  http: [
    { beforeMs: 1_000, afterMs: 100 },
    { beforeMs: 10_000, afterMs: 100 },
  ],
} as const;

/**
 * Fills `process` (or `processCandidates`) on network events; completes a `process` that has only a pid.
 * `governed` (agent scope) keeps calls made in namespaces the event cannot have come from out of it.
 */
export function attributeEvent(event: UnsequencedEvent, log: SocketCallLog, table: ProcessRegistry, governed: GovernedNetns | null = null): UnsequencedEvent {
  if (event.kind !== 'dns' && event.kind !== 'connection' && event.kind !== 'http') return completeProcess(event, table);
  if (event.process !== undefined || event.processCandidates !== undefined) return completeProcess(event, table);
  const timeMs = Date.parse(event.time);
  if (Number.isNaN(timeMs)) return event;
  const netns = netnsFilterOf(event, governed);
  for (const window of ATTRIBUTION_WINDOWS[event.kind]) {
    const query: SocketCallQuery = {
      address: event.kind === 'dns' ? null : event.destination,
      port: event.kind === 'dns' ? 53 : (event.port ?? 0),
      fromMs: timeMs - window.beforeMs,
      toMs: timeMs + window.afterMs,
      ...(netns ? { netns } : {}),
    };
    const candidates = log.find(query);
    if (candidates.length === 1) return withFields(event, { process: candidates[0]! });
    if (candidates.length > 1) return withFields(event, { processCandidates: candidates });
  }
  return event;
}

/** Another sensor knew the pid (fanotify, a step marker): add what the table knows about it. */
function completeProcess(event: UnsequencedEvent, table: ProcessRegistry): UnsequencedEvent {
  const known = event.process;
  if (known === undefined || known.ancestry !== undefined || event.kind === 'process') return event;
  const record = table.record(known.pid);
  if (!record) return event;
  return withFields(event, { process: { ...processRefOf(table, record), ...known } });
}
