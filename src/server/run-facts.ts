/**
 * Facts the server derives from events and metadata, as pure functions:
 * verdict order, the destination an event reached, the job a run belongs to.
 */
import type { RunEvent, RunMetadata, Verdict } from '../protocol/index.js';

export const VERDICTS = ['allowed', 'audit', 'blocked', 'attack-blocked'] as const satisfies readonly Verdict[];

/** Worse verdicts rank higher; a run's verdict is its worst event's. */
export function verdictRank(verdict: Verdict): number {
  return VERDICTS.indexOf(verdict);
}

export function verdictOfRank(rank: number): Verdict {
  return VERDICTS[rank] ?? 'allowed';
}

export function isVerdict(value: string): value is Verdict {
  return (VERDICTS as readonly string[]).includes(value);
}

export function eventVerdict(event: RunEvent): Verdict | null {
  return event.kind === 'dns' || event.kind === 'connection' || event.kind === 'http' ? event.verdict : null;
}

/** Lower-case, without the root dot. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The destination a network event reached: its DNS name when known, else the address. */
export function eventDestination(event: RunEvent): string | null {
  switch (event.kind) {
    case 'dns':
      return normalName(event.name);
    case 'connection':
      return event.name ? normalName(event.name) : event.destination;
    case 'http':
      return normalName(event.host);
    default:
      return null;
  }
}

export function parseTimeMs(text: string | undefined): number | null {
  if (text === undefined) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

export function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

export interface JobIdentity {
  readonly repo: string | null;
  readonly workflow: string | null;
  readonly job: string | null;
}

export function jobIdentity(metadata: RunMetadata | undefined): JobIdentity {
  const ci = metadata?.ci;
  return { repo: ci?.repository ?? null, workflow: ci?.workflow ?? null, job: ci?.job ?? null };
}

/**
 * The key baselines are kept under: one job of one workflow of one repository.
 * Runs without CI identity have no baseline.
 */
export function jobKey(identity: JobIdentity): string | null {
  if (!identity.repo || !identity.workflow || !identity.job) return null;
  return JSON.stringify([identity.repo, identity.workflow, identity.job]);
}
