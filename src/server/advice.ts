/**
 * Policy advice over stored runs: the recommended allowed-endpoints for a job
 * (aggregated over its recent runs) and "replay": what a candidate policy
 * would have blocked in each past run, before anyone switches to block mode.
 * Matching is the policy part's own (compilePolicy, recommendPolicy), so the
 * server never disagrees with the agent about a verdict.
 */
import type { BlockListEntry, EffectivePolicy, Endpoint, RecommendedPolicy, RunEvent, Verdict } from '../protocol/index.js';
import { compilePolicy, recommendPolicy, type CompiledPolicy } from '../policy/index.js';
import { normalName, verdictRank } from './run-facts.js';

/** Block lists merged by canonical text, the first of each kept. */
export function mergeBlockEntries(...lists: readonly (readonly BlockListEntry[])[]): BlockListEntry[] {
  const seen = new Set<string>();
  const out: BlockListEntry[] = [];
  for (const list of lists) {
    for (const entry of list) {
      if (seen.has(entry.text)) continue;
      seen.add(entry.text);
      const { kind, value, reason, text, source } = entry;
      out.push({ kind, value, reason, text, ...(source === undefined ? {} : { source }) });
    }
  }
  return out;
}

/** A block-mode policy with the given allowed endpoints and block list (what a candidate would enforce). */
export function candidatePolicy(allowed: readonly Endpoint[], blockList: readonly BlockListEntry[]): EffectivePolicy {
  return {
    egressPolicy: 'block',
    allowedEndpoints: allowed.map((e) => ({ ...e })),
    blockList: mergeBlockEntries(blockList),
    // Not used by matching; required by the type.
    dnsUpstream: '127.0.0.1:53',
    disableFileMonitoring: false,
    origins: { allowedEndpoints: 'candidate' },
  };
}

/** The allowed-endpoints that would have let all of these events pass, block-list hits excluded. */
export function recommendFromEvents(events: readonly RunEvent[], blockList: readonly BlockListEntry[]): RecommendedPolicy {
  return recommendPolicy(events, candidatePolicy([], blockList));
}

export interface ReplayFinding {
  readonly destination: string;
  /** What the candidate policy would have done. */
  readonly verdict: Extract<Verdict, 'blocked' | 'attack-blocked'>;
  /** What happened in the run. */
  readonly was: Verdict;
  readonly count: number;
  readonly explanation: string;
}

export interface ReplayOutcome {
  readonly networkEvents: number;
  readonly wouldBlock: readonly ReplayFinding[];
}

function decide(compiled: CompiledPolicy, event: RunEvent): { destination: string; verdict: Verdict; explanation: string; was: Verdict } | null {
  switch (event.kind) {
    case 'dns': {
      const decision = compiled.decideName(event.name);
      return { destination: normalName(event.name), verdict: decision.verdict, explanation: decision.rule.explanation, was: event.verdict };
    }
    case 'connection': {
      const decision = compiled.decideConnection({
        ip: event.destination,
        port: event.port,
        protocol: event.protocol,
        ...(event.name === undefined ? {} : { name: event.name }),
      });
      const host = event.name ? normalName(event.name) : event.destination;
      const destination = event.port === null ? `${host}/${event.protocol}` : `${host}:${event.port}`;
      return { destination, verdict: decision.verdict, explanation: decision.rule.explanation, was: event.verdict };
    }
    case 'http': {
      const decision = compiled.decideConnection({ ip: event.destination, port: event.port, protocol: 'tcp', name: event.host });
      return { destination: `${normalName(event.host)}:${event.port}`, verdict: decision.verdict, explanation: decision.rule.explanation, was: event.verdict };
    }
    default:
      return null;
  }
}

/** What `compiled` would have blocked among a run's network events, grouped by destination. */
export function replayEvents(compiled: CompiledPolicy, events: readonly RunEvent[]): ReplayOutcome {
  const found = new Map<string, { destination: string; verdict: 'blocked' | 'attack-blocked'; was: Verdict; count: number; explanation: string }>();
  let networkEvents = 0;
  for (const event of events) {
    const decision = decide(compiled, event);
    if (!decision) continue;
    networkEvents++;
    if (decision.verdict !== 'blocked' && decision.verdict !== 'attack-blocked') continue;
    const key = `${decision.destination}\u0000${decision.verdict}`;
    const existing = found.get(key);
    if (existing) {
      existing.count += 1;
      if (verdictRank(decision.was) > verdictRank(existing.was)) existing.was = decision.was;
    } else {
      found.set(key, { destination: decision.destination, verdict: decision.verdict, was: decision.was, count: 1, explanation: decision.explanation });
    }
  }
  const wouldBlock = [...found.values()].sort(
    (a, b) => verdictRank(b.verdict) - verdictRank(a.verdict) || b.count - a.count || a.destination.localeCompare(b.destination),
  );
  return { networkEvents, wouldBlock };
}

export function compileCandidate(allowed: readonly Endpoint[], blockList: readonly BlockListEntry[]): CompiledPolicy {
  return compilePolicy(candidatePolicy(allowed, blockList));
}
