/**
 * The file sensor: creates, writes, renames and deletes under the workspace,
 * with the process that made them, and `source-tampered` findings for changes
 * to tracked source. fanotify in FID mode with a filesystem mark (lossless on
 * a 10,000-file install; see mechanisms.md), events placed in the workspace
 * by a directory index built at start and kept from the events themselves.
 *
 * Writers are named through the process sensor's table (shared 'processes'):
 * by the time a file event is handled the writer has often exited and /proc
 * has nothing. Events are handled ATTRIBUTION_DELAY_MS after they are read,
 * so the process sensor has read the exec that came before the write.
 */
import { readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileSourceWriters } from '../../../policy/index.js';
import { RunwallError, type ProcessRef } from '../../../protocol/index.js';
import { FanotifyGroup, filesystemIdOf, handleKeyOfPath, type FanotifyDecoded, type FanotifyEvent } from '../../platform/index.js';
import { STEPS_KEY } from '../../steps/step-sensor.js';
import { PROCESS_TABLE_KEY, type ProcessTable } from '../process/index.js';
import type { Sensor, SensorContext, SensorProblem } from '../sensor.js';
import { DirectoryIndex } from './directory-index.js';
import { FileActivity, type Writer } from './file-activity.js';
import { interpretEvent } from './file-changes.js';
import { gitTrackedFiles, hashPathSync, snapshotSource, stampPathSync, walkWorkspace } from './source-snapshot.js';
import { withFields } from '../../with-fields.js';

/** How long a read event waits before it is attributed, so the process table has caught up with the writer's exec. */
export const ATTRIBUTION_DELAY_MS = 50;
/** Writers of changes outside the known workspace directories looked up in /proc per batch. */
const EARLY_LOOKUPS_ELSEWHERE = 16;
/** Decode problems reported one by one before the rest are only counted. */
const MAX_REPORTED_PROBLEMS = 10;

/** The process sensor's table, when it started (it publishes it before this sensor starts). */
function processTable(shared: Map<string, unknown>): ProcessTable | null {
  const table = shared.get(PROCESS_TABLE_KEY);
  // Shared state is untyped by design; the process sensor is the only writer of this key.
  return typeof table === 'object' && table !== null && typeof (table as Partial<ProcessTable>).get === 'function' ? (table as ProcessTable) : null;
}

/** The step tracker's lookup, when the steps part runs (it starts before this sensor). */
function stepLookup(shared: Map<string, unknown>): ((pid: number) => string | undefined) | undefined {
  const tracker = shared.get(STEPS_KEY);
  if (typeof tracker !== 'object' || tracker === null) return undefined;
  const stepOfProcess = (tracker as { stepOfProcess?: unknown }).stepOfProcess;
  return typeof stepOfProcess === 'function' ? (pid) => (stepOfProcess as (pid: number) => string | undefined).call(tracker, pid) : undefined;
}

/** Best effort when the process table does not know the pid (or is absent): /proc, while the process lives. */
function writerFromProc(pid: number): Writer {
  let exe: string | null = null;
  let argv: string[] = [];
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // Exited already, or a kernel thread.
  }
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg, index, all) => arg !== '' || index < all.length - 1);
  } catch {
    // Exited already.
  }
  return { exe, argv, ref: { pid, ...(exe ? { exe } : {}), ...(argv.length > 0 ? { argv } : {}) } };
}

/**
 * The writer as the table knows it, with its ancestry. The program is what
 * /proc said when the event was read, when the writer was alive then: under
 * load the details of an exec can reach the table later than the write's event
 * reaches this sensor, and a table that has not caught up still shows the
 * program the process was forked from.
 */
function writerFromTable(table: ProcessTable, pid: number, early: Writer | undefined): Writer | null {
  const known = table.get(pid);
  if (!known) return null;
  const info = early?.exe ? withFields(known, { exe: early.exe, argv: early.argv }) : known;
  const ancestry = table
    .ancestry(pid)
    .filter((ancestor) => ancestor.pid !== pid)
    .map((ancestor) => ({ pid: ancestor.pid, ...(ancestor.exe ? { exe: ancestor.exe } : {}) }));
  const ref: ProcessRef = {
    pid,
    ppid: info.ppid,
    ...(info.exe ? { exe: info.exe } : {}),
    argv: [...info.argv],
    ...(ancestry.length > 0 ? { ancestry } : {}),
  };
  return { exe: info.exe, argv: info.argv, ref };
}

function resolveWorkspace(workspace: string): string {
  let absolute: string;
  try {
    absolute = realpathSync(workspace);
    if (!statSync(absolute).isDirectory()) throw new Error('not a directory');
  } catch (error) {
    throw new RunwallError('RW_FILE_UNREADABLE', `--workspace ${workspace} is not a directory runwall can read: ${error instanceof Error ? error.message : String(error)}`, { workspace });
  }
  return absolute;
}

export async function startFileSensor(context: SensorContext): Promise<Sensor | null> {
  const { pipeline, policy } = context;
  if (policy.disableFileMonitoring) {
    const origin = policy.origins['disableFileMonitoring'] ?? 'the policy';
    pipeline.emit({
      kind: 'agent',
      time: new Date().toISOString(),
      action: 'sensor',
      message: `file monitoring is off: disable-file-monitoring is set (${origin}); no file events and no source-tamper findings in this run`,
    });
    return null;
  }
  if (context.workspace === null) return null;
  const workspace = resolveWorkspace(context.workspace);

  const problems: SensorProblem[] = [];
  let reported = 0;
  let lost = 0;
  let malformed = 0;
  const problem = (code: SensorProblem['code'], message: string): void => {
    const time = new Date().toISOString();
    if (reported >= MAX_REPORTED_PROBLEMS) return;
    reported += 1;
    problems.push({ code, message, time });
    pipeline.emit({ kind: 'agent', time, action: 'error', code, message });
  };

  /** Read batches waiting for attribution, each with what /proc said about its writers when it was read. */
  const queue: { readonly at: number; readonly events: readonly FanotifyEvent[]; readonly early: ReadonlyMap<number, Writer> }[] = [];
  let handle: ((events: readonly FanotifyEvent[], early: ReadonlyMap<number, Writer>) => void) | null = null;
  let table: ProcessTable | null = null;
  let watchedDirectories: DirectoryIndex | null = null;
  let timer: NodeJS.Timeout | null = null;
  const processDue = (all: boolean): void => {
    timer = null;
    if (!handle) {
      // Still taking the snapshot: keep what was read until it can be placed.
      timer = setTimeout(() => processDue(false), ATTRIBUTION_DELAY_MS);
      return;
    }
    const due = Date.now() - ATTRIBUTION_DELAY_MS;
    while (queue.length > 0 && (all || (queue[0]?.at ?? Infinity) <= due)) {
      const entry = queue.shift();
      if (entry && handle) handle(entry.events, entry.early);
    }
    if (queue.length > 0 && !all) timer = setTimeout(() => processDue(false), ATTRIBUTION_DELAY_MS);
  };
  const onBatch = (batch: FanotifyDecoded): void => {
    if (batch.overflows > 0) {
      lost += batch.overflows;
      problem('RW_FILE_EVENTS_LOST', `the kernel's fanotify queue overflowed ${batch.overflows} time(s): some file changes under ${workspace} were not recorded`);
    }
    for (const error of batch.errors) {
      malformed += 1;
      problem(error.code, error.message);
    }
    if (batch.events.length === 0) return;
    // Each writer's program is read from /proc now, while it may still be alive (see writerFromTable):
    // always for changes in a directory known to be in the workspace, for a few others per batch
    // (a directory made in this very batch is not known yet; the rest of the filesystem is not ours).
    const early = new Map<number, Writer>();
    let elsewhere = 0;
    for (const event of batch.events) {
      if (event.pid === process.pid || early.has(event.pid)) continue;
      const dir = event.entry?.dir ?? event.to?.dir ?? event.from?.dir;
      const inside = watchedDirectories !== null && dir !== undefined && watchedDirectories.has(dir);
      if (!inside && elsewhere >= EARLY_LOOKUPS_ELSEWHERE) continue;
      if (!inside) elsewhere += 1;
      early.set(event.pid, writerFromProc(event.pid));
    }
    queue.push({ at: Date.now(), events: batch.events, early });
    timer ??= setTimeout(() => processDue(false), ATTRIBUTION_DELAY_MS);
  };

  // The group is open (and marks placed) before the walk, so nothing made while walking is missed.
  const group = FanotifyGroup.open(onBatch, (message) => problem('RW_INTERNAL', message));
  try {
    const indexStarted = performance.now();
    const directories = new DirectoryIndex(workspace, (key) => group.pathOfHandle(key));
    watchedDirectories = directories;
    const filesystems = new Map<number, string | null>();
    const walk = walkWorkspace(workspace, (directory) => {
      let fsid = filesystems.get(directory.device);
      if (fsid === undefined) {
        group.markFilesystem(directory.absolute);
        fsid = filesystemIdOf(directory.absolute);
        filesystems.set(directory.device, fsid);
      }
      const key = fsid === null ? null : handleKeyOfPath(directory.absolute, fsid);
      if (key !== null) directories.set(key, directory.relative);
    });
    const indexMs = performance.now() - indexStarted;
    const tracked = await gitTrackedFiles(workspace);
    const snapshot = await snapshotSource(workspace, tracked ?? walk.files, tracked ? 'git' : 'all-files', walk.truncated);

    table = processTable(context.shared);
    let writers = new Map<number, Writer>();
    let earlyWriters: ReadonlyMap<number, Writer> = new Map();
    const activity = new FileActivity({
      emit: (event) => pipeline.emit(event),
      now: () => new Date().toISOString(),
      source: snapshot,
      hash: (path) => hashPathSync(`${workspace}/${path}`),
      stamp: (path) => stampPathSync(`${workspace}/${path}`),
      writer: (pid) => {
        let writer = writers.get(pid);
        if (!writer) {
          const early = earlyWriters.get(pid);
          writer = (table ? writerFromTable(table, pid, early) : null) ?? early ?? writerFromProc(pid);
          writers.set(pid, writer);
        }
        return writer;
      },
      excuse: compileSourceWriters(policy.allowedSourceWriters ?? []),
      stepOf: stepLookup(context.shared),
    });
    const exists = (path: string): boolean => {
      try {
        statSync(`${workspace}/${path}`);
        return true;
      } catch {
        return false;
      }
    };
    handle = (events, early) => {
      writers = new Map(); // a pid's process may change (exec) between batches
      earlyWriters = early;
      for (const event of events) {
        if (event.pid === process.pid) continue; // runwall's own reads and writes
        for (const change of interpretEvent(event, directories, exists)) activity.apply(change);
      }
    };
    // Counted changes are emitted at each step boundary, so they land in their step.
    const unsubscribe = pipeline.subscribe((event) => {
      if (event.kind === 'step') queueMicrotask(() => activity.flushFolds());
    });

    pipeline.emit({
      kind: 'agent',
      time: new Date().toISOString(),
      action: 'sensor',
      message:
        `file monitoring on ${workspace}: ${snapshot.paths.length} source files (${snapshot.kind === 'git' ? 'git ls-files' : 'every file present; not a git work tree'}) ` +
        `hashed in ${Math.round(snapshot.hashMs)} ms; ${walk.directories} directories indexed in ${Math.round(indexMs)} ms` +
        (walk.truncated ? `; more than ${walk.directories} directories: the rest are looked up when first named, and source beyond them is not watched` : ''),
    });

    return {
      name: 'file',
      problems,
      async stop() {
        unsubscribe();
        // Let the process sensor read the last execs, then take everything the kernel still holds.
        await sleep(ATTRIBUTION_DELAY_MS);
        group.drain();
        if (timer) clearTimeout(timer);
        processDue(true);
        activity.finish();
        await group.close();
        const c = activity.counts;
        pipeline.emit({
          kind: 'agent',
          time: new Date().toISOString(),
          action: 'sensor',
          message:
            `file sensor: ${c.create} created, ${c.write} written, ${c.rename} renamed, ${c.delete} deleted under ${workspace}; ` +
            `${c.source} changes to source, ${c.findings} source-tampered findings${c.unseen > 0 ? ` (${c.unseen} changes found only by comparing at the end)` : ''}; ${c.folded} other changes counted in ${c.foldedEvents} folded events; ` +
            `${directories.lookups} directory lookups; ${lost === 0 && malformed === 0 ? 'no events lost' : `${lost} queue overflows, ${malformed} malformed events`}`,
        });
      },
    };
  } catch (error) {
    if (timer) clearTimeout(timer);
    await group.close();
    throw error;
  }
}
