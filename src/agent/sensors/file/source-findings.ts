/**
 * The `source-tampered` finding as a draft detection event: a tracked source
 * file changed during the job (SolarWinds, XZ), with the path, the process,
 * the step and the file's hash before and after. A change an
 * `allowed-source-writers` entry excuses is still a finding, at severity
 * info, saying which entry excused it. Pure.
 */
import type { ProcessRef, UnsequencedEvent } from '../../../protocol/index.js';

export const SOURCE_TAMPERED = 'source-tampered';

export type SourceChangeAction = 'write' | 'create' | 'delete' | 'rename';

export interface SourceChangeFacts {
  readonly path: string;
  readonly action: SourceChangeAction;
  /** Where a renamed file went (null: outside the workspace). */
  readonly to?: string | null;
  readonly before: string | null;
  /** The path's content when runwall checked it after the change (null: gone). */
  readonly after: string | null;
  readonly process: ProcessRef;
  readonly step?: string;
  /** The allowed-source-writers entry that excused it, or null. */
  readonly excusedBy: string | null;
}

export interface SourceRestoredFacts {
  readonly path: string;
  readonly before: string | null;
  /** Other contents seen at the path during the job (may be empty: restored before runwall could read it). */
  readonly seen: readonly (string | null)[];
  readonly changes: number;
  readonly writers: readonly ProcessRef[];
  /** Every change was excused: by these entries. Null when any was not. */
  readonly excusedBy: readonly string[] | null;
  readonly step?: string;
}

type DetectionDraft = Extract<UnsequencedEvent, { kind: 'detection' }>;

function who(process: ProcessRef): string {
  const name = process.exe ?? process.argv?.[0];
  return name ? `${name} (pid ${process.pid})` : `pid ${process.pid}`;
}

function short(hash: string | null): string {
  return hash === null ? 'gone' : hash.slice(0, 12);
}

const VERB: Record<SourceChangeAction, string> = {
  write: 'written',
  create: 'replaced',
  delete: 'deleted',
  rename: 'renamed',
};

function remedy(path: string): string {
  return (
    `Find out why this process changed tracked source during the build: compare the file with git (\`git diff -- ${path}\`), ` +
    'look at the step and the tool that ran it, and do not publish what this job built until you know; rebuild from a clean checkout. ' +
    'If the writer is legitimate (a formatter, a version bump), list it in allowed-source-writers: its changes are then shown at severity info.'
  );
}

function processEvidence(process: ProcessRef): Record<string, unknown> {
  return { pid: process.pid, ...(process.exe ? { exe: process.exe } : {}), ...(process.argv ? { argv: process.argv } : {}) };
}

export function sourceTamperedDraft(facts: SourceChangeFacts, time: string): DetectionDraft {
  const excused = facts.excusedBy !== null;
  const where = facts.action === 'rename' ? `${facts.path} → ${facts.to ?? '(outside the workspace)'}` : facts.path;
  return {
    kind: 'detection',
    time,
    id: SOURCE_TAMPERED,
    severity: excused ? 'info' : 'high',
    title: excused
      ? `Source file ${where} was ${VERB[facts.action]} by an allowed writer, ${who(facts.process)}`
      : `Source file ${where} was ${VERB[facts.action]} during the job by ${who(facts.process)}`,
    evidence: {
      path: facts.path,
      action: facts.action,
      ...(facts.action === 'rename' ? { to: facts.to ?? null } : {}),
      sha256Before: facts.before,
      sha256After: facts.after,
      unchanged: facts.before === facts.after,
      process: processEvidence(facts.process),
      step: facts.step ?? null,
      excused,
      ...(excused ? { excusedBy: facts.excusedBy } : {}),
      summary: `${short(facts.before)} → ${short(facts.after)}`,
    },
    remedy: excused
      ? `Excused by allowed-source-writers entry '${facts.excusedBy}'. Check that this change is the one that writer should make.`
      : remedy(facts.path),
    process: facts.process,
    ...(facts.step !== undefined ? { step: facts.step } : {}),
  };
}

/** At the end of the job: the file has its original content again, after changes (the SolarWinds pattern). */
export function sourceRestoredDraft(facts: SourceRestoredFacts, time: string): DetectionDraft {
  const excused = facts.excusedBy !== null;
  const first = facts.writers[0];
  return {
    kind: 'detection',
    time,
    id: SOURCE_TAMPERED,
    severity: excused ? 'info' : 'high',
    title: `Source file ${facts.path} was changed during the job and restored before it ended`,
    evidence: {
      path: facts.path,
      restored: true,
      sha256Before: facts.before,
      sha256After: facts.before,
      sha256Seen: [...facts.seen],
      changes: facts.changes,
      writers: facts.writers.map(processEvidence),
      excused,
      ...(excused ? { excusedBy: [...(facts.excusedBy ?? [])] } : {}),
      note:
        facts.seen.length === 0
          ? 'every time runwall read the file it had its original content: it was restored before it could be read, or rewritten unchanged'
          : 'the file had other content during the job',
    },
    remedy: excused
      ? 'Every change was made by an allowed writer; check that this is expected.'
      : `A source file that is changed for the build and put back afterwards is how SolarWinds' SUNSPOT hid its implant. ${remedy(facts.path)}`,
    ...(first ? { process: first } : {}),
    ...(facts.step !== undefined ? { step: facts.step } : {}),
  };
}

/** At the end of the job: a source file's content changed, but no file event said by whom (events were lost, or it was reached through a filesystem not watched). */
export function sourceChangedUnseenDraft(facts: { path: string; before: string | null; after: string | null }, time: string): DetectionDraft {
  return {
    kind: 'detection',
    time,
    id: SOURCE_TAMPERED,
    severity: 'high',
    title: `Source file ${facts.path} changed during the job; runwall saw no event naming the writer`,
    evidence: {
      path: facts.path,
      action: facts.after === null ? 'delete' : 'write',
      sha256Before: facts.before,
      sha256After: facts.after,
      process: null,
      step: null,
      excused: false,
      note: 'found by comparing the file with its state at the start; its file events were lost or it was changed through a path runwall does not watch',
    },
    remedy: remedy(facts.path),
  };
}

/** When a job changes more source files than the report shows one by one. */
export function sourceFindingsCappedDraft(shown: number, more: number, allExcused: boolean, time: string): DetectionDraft {
  return {
    kind: 'detection',
    time,
    id: SOURCE_TAMPERED,
    severity: allExcused ? 'info' : 'high',
    title: `${more} more changes to source files were not listed one by one`,
    evidence: { shown, more, excused: allExcused, note: 'every change is still a file event with source: true' },
    remedy: 'A job that rewrites this much source is either checking out other code or tampering with it; look at the file events of this run.',
  };
}
