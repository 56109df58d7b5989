/**
 * The first bytes of each TCP flow the NFQUEUE rules hand over, put back in
 * order until they say where the flow goes. Pure: time comes in as an
 * argument, verdicts go out as steps the caller carries out.
 *
 * A ClientHello split over several segments (or sent out of order, or
 * retransmitted) is reassembled by TCP sequence number. Segments of a flow
 * still undecided are held (no verdict yet, so the server has not seen them);
 * segments without data pass at once. Everything is bounded: packets held per
 * flow, bytes per flow, time a segment is held, flows tracked; at a bound the
 * flow is judged on what arrived. Bytes a retransmission changes are a
 * desynchronisation attempt and judged as a malformed start (denied unless the
 * address is an allowed network).
 */
import { classifyStreamStart, type StreamStart } from './stream-start.js';
import { looksLikeTls } from './tls-client-hello.js';

export interface FlowSegment {
  /** Identifies the flow: source, source port, destination, destination port. */
  readonly key: string;
  /** The queued packet's id; every id gets exactly one verdict through a step. */
  readonly id: number;
  readonly sequence: number;
  readonly syn: boolean;
  readonly fin: boolean;
  readonly rst: boolean;
  readonly payload: Uint8Array;
}

export type FlowVerdict = 'pass' | 'deny';

export type FlowStep =
  /** The packets go on with their flow still unjudged (a segment without data). */
  | { readonly action: 'undecided'; readonly ids: readonly number[] }
  /** The flow's start is known: the caller judges it, calls settle(), and gives every id that verdict. */
  | { readonly action: 'judge'; readonly key: string; readonly base: number; readonly start: StreamStart; readonly ids: readonly number[] }
  /** The flow was judged already: these packets get the same verdict. */
  | { readonly action: 'judged'; readonly verdict: FlowVerdict; readonly ids: readonly number[] };

export interface FlowLimits {
  /** Flows tracked before the oldest is judged (or forgotten, when it holds nothing). */
  readonly maxFlows: number;
  readonly maxHeldPackets: number;
  /** Stream bytes read per flow. */
  readonly maxBytes: number;
  /** How long a segment is held waiting for the rest of the start. */
  readonly holdMs: number;
  /** How long a judged flow's verdict is remembered for its packets still in flight. */
  readonly judgedMs: number;
  readonly maxJudged: number;
  /** A flow that sent no data for this long is forgotten. */
  readonly idleMs: number;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = Object.freeze({
  maxFlows: 16_384,
  maxHeldPackets: 32,
  maxBytes: 36 * 1024,
  holdMs: 1500,
  judgedMs: 30_000,
  maxJudged: 65_536,
  idleMs: 120_000,
});

/**
 * Sequence numbers this far after a flow's start belong to it; others start a new flow on the same tuple.
 * Only a flow's first 32 client packets are queued (at most 64 KiB each), so its own segments fall well
 * inside; a wider window would let a new flow on a reused tuple inherit the old verdict unchecked.
 */
const SAME_FLOW_WINDOW = 2 ** 22;

interface Segment {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface PendingFlow {
  base: number;
  readonly segments: Segment[];
  readonly held: number[];
  heldSince: number | null;
  lastSeen: number;
  conflict: boolean;
}

interface JudgedFlow {
  readonly verdict: FlowVerdict;
  readonly base: number;
  readonly until: number;
}

function distance(sequence: number, base: number): number {
  return (sequence - base) >>> 0;
}

export class FlowTable {
  readonly #limits: FlowLimits;
  /** Insertion order is age order: the oldest is evicted first. */
  readonly #pending = new Map<string, PendingFlow>();
  readonly #judged = new Map<string, JudgedFlow>();

  constructor(limits: Partial<FlowLimits> = {}) {
    this.#limits = { ...DEFAULT_FLOW_LIMITS, ...limits };
  }

  /** Flows still waiting for their start. */
  get pending(): number {
    return this.#pending.size;
  }

  add(segment: FlowSegment, now: number): FlowStep[] {
    const steps: FlowStep[] = [];
    const dataStart = segment.syn ? (segment.sequence + 1) >>> 0 : segment.sequence;
    if (segment.syn) {
      // A SYN opens a new connection on this tuple, whatever was known about an old one.
      this.#judged.delete(segment.key);
      const stale = this.#pending.get(segment.key);
      if (stale) steps.push(...this.#judgeNow(segment.key, stale, []));
    } else {
      const judged = this.#judged.get(segment.key);
      if (judged && distance(segment.sequence, judged.base) < SAME_FLOW_WINDOW) {
        steps.push({ action: 'judged', verdict: judged.verdict, ids: [segment.id] });
        return steps;
      }
      if (judged) this.#judged.delete(segment.key);
    }

    let flow = this.#pending.get(segment.key);
    if (!flow) {
      steps.push(...this.#makeRoom());
      flow = { base: dataStart, segments: [], held: [], heldSince: null, lastSeen: now, conflict: false };
      this.#pending.set(segment.key, flow);
    }
    flow.lastSeen = now;

    if (segment.payload.length === 0) {
      if ((segment.fin || segment.rst) && flow.held.length > 0) {
        steps.push(...this.#judgeNow(segment.key, flow, [segment.id]));
      } else {
        if (segment.fin || segment.rst) this.#pending.delete(segment.key);
        steps.push({ action: 'undecided', ids: [segment.id] });
      }
      return steps;
    }

    let offset = distance(dataStart, flow.base);
    if (offset >= SAME_FLOW_WINDOW) {
      // Data from before the start we assumed, or far after it (a new flow on a tuple whose old flow
      // sent no data): only possible before any data was seen.
      if (flow.segments.length === 0) {
        flow.base = dataStart;
        offset = 0;
      } else {
        flow.conflict = true;
      }
    }
    flow.held.push(segment.id);
    flow.heldSince ??= now;
    if (!flow.conflict && offset < this.#limits.maxBytes) this.#store(flow, offset, segment.payload);
    const prefix = contiguousPrefix(flow.segments);
    const final =
      flow.conflict ||
      segment.fin ||
      segment.rst ||
      offset >= this.#limits.maxBytes ||
      prefix.length >= this.#limits.maxBytes ||
      flow.held.length >= this.#limits.maxHeldPackets;
    const start = flow.conflict ? conflictStart(prefix) : classifyStreamStart(prefix, final);
    if (start.kind === 'need-more') return steps;
    this.#pending.delete(segment.key);
    steps.push({ action: 'judge', key: segment.key, base: flow.base, start, ids: flow.held });
    return steps;
  }

  /** Remembers the verdict the caller gave a judged flow (`base` from its judge step), for its packets still in flight. */
  settle(key: string, verdict: FlowVerdict, base: number, now: number): void {
    if (this.#judged.size >= this.#limits.maxJudged) {
      const oldest = this.#judged.keys().next().value;
      if (oldest !== undefined) this.#judged.delete(oldest);
    }
    this.#judged.delete(key);
    this.#judged.set(key, { verdict, base, until: now + this.#limits.judgedMs });
  }

  /** Judges flows whose segments waited `holdMs`, forgets idle flows and old verdicts. */
  expire(now: number): FlowStep[] {
    const steps: FlowStep[] = [];
    for (const [key, flow] of this.#pending) {
      if (flow.heldSince !== null && now - flow.heldSince >= this.#limits.holdMs) steps.push(...this.#judgeNow(key, flow, []));
      else if (flow.held.length === 0 && now - flow.lastSeen >= this.#limits.idleMs) this.#pending.delete(key);
    }
    for (const [key, judged] of this.#judged) {
      if (judged.until <= now) this.#judged.delete(key);
    }
    return steps;
  }

  /** When expire() next has something to do for held segments, or null. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const flow of this.#pending.values()) {
      if (flow.heldSince === null) continue;
      const at = flow.heldSince + this.#limits.holdMs;
      if (next === null || at < next) next = at;
    }
    return next;
  }

  /** Judges every pending flow that holds packets (at shutdown: nothing may stay unanswered). */
  drain(): FlowStep[] {
    const steps: FlowStep[] = [];
    for (const [key, flow] of this.#pending) {
      if (flow.held.length > 0) steps.push(...this.#judgeNow(key, flow, []));
    }
    this.#pending.clear();
    return steps;
  }

  #judgeNow(key: string, flow: PendingFlow, extra: readonly number[]): FlowStep[] {
    this.#pending.delete(key);
    const prefix = contiguousPrefix(flow.segments);
    const start = flow.conflict ? conflictStart(prefix) : classifyStreamStart(prefix, true);
    const settled: StreamStart = start.kind === 'need-more' ? { kind: 'other' } : start;
    return [{ action: 'judge', key, base: flow.base, start: settled, ids: [...flow.held, ...extra] }];
  }

  #makeRoom(): FlowStep[] {
    const steps: FlowStep[] = [];
    // Bounded: each pass removes one flow, and at most the excess is removed.
    while (this.#pending.size >= this.#limits.maxFlows) {
      const [key, flow] = this.#pending.entries().next().value ?? [];
      if (key === undefined || flow === undefined) break;
      if (flow.held.length > 0) steps.push(...this.#judgeNow(key, flow, []));
      else this.#pending.delete(key);
    }
    return steps;
  }

  #store(flow: PendingFlow, offset: number, payload: Uint8Array): void {
    const bytes = payload.subarray(0, this.#limits.maxBytes - offset);
    for (const existing of flow.segments) {
      const from = Math.max(offset, existing.offset);
      const to = Math.min(offset + bytes.length, existing.offset + existing.bytes.length);
      for (let at = from; at < to; at++) {
        if (bytes[at - offset] !== existing.bytes[at - existing.offset]) {
          flow.conflict = true;
          return;
        }
      }
      if (existing.offset === offset && existing.bytes.length >= bytes.length) return; // a retransmission we already have
    }
    flow.segments.push({ offset, bytes });
    flow.segments.sort((a, b) => a.offset - b.offset);
  }
}

/** The stream from its first byte up to the first gap. */
function contiguousPrefix(segments: readonly Segment[]): Uint8Array {
  let end = 0;
  for (const segment of segments) {
    if (segment.offset > end) break;
    end = Math.max(end, segment.offset + segment.bytes.length);
  }
  const out = new Uint8Array(end);
  for (const segment of segments) {
    if (segment.offset >= end) break;
    out.set(segment.bytes.subarray(0, end - segment.offset), segment.offset);
  }
  return out;
}

function conflictStart(prefix: Uint8Array): StreamStart {
  const message = 'a retransmitted segment changed bytes already seen (a TCP desynchronisation attempt); the flow is judged without a name';
  return looksLikeTls(prefix)
    ? { kind: 'tls', serverName: null, encryptedClientHello: false, problem: { code: 'RW_TLS_MALFORMED', message } }
    : { kind: 'http', host: null, targetHost: null, problem: { code: 'RW_HTTP_MALFORMED', message } };
}
