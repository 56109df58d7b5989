/**
 * The process sensor's table as the detector reads it (published as
 * `context.shared.get('processes')`), and the conversion of what it holds into
 * the plain facts src/detect judges. The table may be absent (the process
 * sensor failed); the detector then works from what events and /proc say.
 */
import type { AncestorFacts, ProcessFacts } from '../../../detect/index.js';
import type { ProcessRef } from '../../../protocol/index.js';
import { PROCESS_TABLE_KEY, type ProcessInfo, type ProcessTable } from '../process/index.js';

export type { ProcessInfo, ProcessTable };

/** The table if the process sensor published one that has the expected shape. */
export function processTableOf(shared: ReadonlyMap<string, unknown>): ProcessTable | null {
  const candidate = shared.get(PROCESS_TABLE_KEY) as Partial<ProcessTable> | undefined;
  if (!candidate || typeof candidate.get !== 'function' || typeof candidate.onExec !== 'function' || typeof candidate.ancestry !== 'function') return null;
  return candidate as ProcessTable;
}

export function factsOf(info: ProcessInfo, table: ProcessTable | null): ProcessFacts {
  const ancestry: AncestorFacts[] = (table?.ancestry(info.pid) ?? []).filter((a) => a.pid !== info.pid).map((a) => ({ pid: a.pid, exe: a.exe, argv: a.argv }));
  return { pid: info.pid, ppid: info.ppid, exe: info.exe, argv: info.argv, cwd: info.cwd, uid: info.uid, ancestry };
}

/** Facts from the process an enricher put on an event. */
export function factsOfRef(ref: ProcessRef | undefined, step: string | undefined): ProcessFacts | undefined {
  if (!ref) return undefined;
  return {
    pid: ref.pid,
    ppid: ref.ppid ?? null,
    exe: ref.exe ?? null,
    argv: ref.argv ?? [],
    ancestry: (ref.ancestry ?? []).map((a) => ({ pid: a.pid, exe: a.exe ?? null })),
    ...(step !== undefined ? { step } : {}),
  };
}
