/**
 * What the file sensor reports, decided from the stream of changes: `file`
 * events and `source-tampered` findings. Reading the file system, naming
 * processes and the pipeline are injected, so this is tested without a kernel.
 *
 * Volume (decided here, documented in docs/files.md):
 * - Every change to a source file is its own `file` event (`source: true`,
 *   with the content's sha256) and the first change of each file by each
 *   process is a finding; after MAX_SOURCE_FINDINGS findings the rest are
 *   counted in one closing finding.
 * - Other changes are shown one by one for the first INDIVIDUAL_PER_DIRECTORY
 *   in each fold directory (`node_modules/`, `dist/`, `./`; INDIVIDUAL_PER_RUN
 *   in all), then counted: one event per directory, action, executable and step,
 *   with `count` and the directory as `path`, emitted at each step boundary
 *   and at the end. Past MAX_FOLD_DIRECTORIES directories, changes are
 *   counted under `./` (the workspace). Counts add up exactly to what the
 *   kernel reported.
 * - A write is content modified and then the file closed (or the job ended);
 *   a file only opened for writing (`touch`) is not a write. A source file
 *   closed after writing without a modify (mmap) is a write if its hash changed.
 */
import type { SourceWriterMatcher } from '../../../policy/index.js';
import type { FileEvent, ProcessRef, RunEvent, UnsequencedEvent } from '../../../protocol/index.js';
import type { FileChange } from './file-changes.js';
import {
  SOURCE_TAMPERED,
  sourceChangedUnseenDraft,
  sourceFindingsCappedDraft,
  sourceRestoredDraft,
  sourceTamperedDraft,
  type SourceChangeAction,
} from './source-findings.js';
import { foldDirectory, INDIVIDUAL_PER_DIRECTORY, INDIVIDUAL_PER_RUN, isWithin, MAX_FOLD_DIRECTORIES, maySource } from './workspace-paths.js';

/** Source findings listed one by one before the rest are counted. */
export const MAX_SOURCE_FINDINGS = 1000;

/** The process behind a change, as the process table (or /proc) knew it. */
export interface Writer {
  readonly ref: ProcessRef;
  readonly exe: string | null;
  readonly argv: readonly string[];
}

/** The source files when monitoring started, and their content hashes then. */
export interface SourceSnapshot {
  /** Sorted relative paths. */
  readonly paths: readonly string[];
  /** sha256 at start (null: could not be read). */
  readonly hashes: ReadonlyMap<string, string | null>;
  /** Inode, size and change time at start (see stampPathSync), to find changes no event reported. */
  readonly stamps: ReadonlyMap<string, string | null>;
}

export interface FileActivityDeps {
  readonly emit: (event: UnsequencedEvent) => RunEvent;
  readonly now: () => string;
  readonly source: SourceSnapshot;
  /** sha256 of the content at a relative path now, or null when it is gone or not a file. */
  readonly hash: (path: string) => string | null;
  /** The stamp of a relative path now (inode, size, change time), or null when it is gone. */
  readonly stamp: (path: string) => string | null;
  readonly writer: (pid: number) => Writer;
  readonly excuse: SourceWriterMatcher;
  /** The step a process belongs to, when steps are tracked: counted changes are kept apart per step. */
  readonly stepOf?: (pid: number) => string | undefined;
}

type FileAction = FileEvent['action'];

export interface FileCounts {
  create: number;
  write: number;
  rename: number;
  delete: number;
  /** Changes to source files (each its own event). */
  source: number;
  /** Non-source changes counted into folded events, and how many such events. */
  folded: number;
  foldedEvents: number;
  findings: number;
  /** Source files found changed at the end without any event about them. */
  unseen: number;
}

interface SourceState {
  readonly before: string | null;
  last: string | null;
  readonly seen: Set<string | null>;
  changes: number;
  readonly writers: Map<number, ProcessRef>;
  readonly excusedBy: Set<string>;
  unexcused: boolean;
  step?: string;
}

interface Fold {
  readonly dir: string;
  readonly action: FileAction;
  readonly time: string;
  readonly process: ProcessRef;
  readonly step: string | undefined;
  count: number;
}

const FILE_ACTION: Record<SourceChangeAction, FileAction> = { write: 'write', create: 'create', delete: 'delete', rename: 'rename' };

export class FileActivity {
  readonly counts: FileCounts = { create: 0, write: 0, rename: 0, delete: 0, source: 0, folded: 0, foldedEvents: 0, findings: 0, unseen: 0 };
  readonly #sourceSet: ReadonlySet<string>;
  readonly #states = new Map<string, SourceState>();
  readonly #pending = new Map<string, number>();
  readonly #found = new Set<string>();
  readonly #perDirectory = new Map<string, number>();
  readonly #folds = new Map<string, Fold>();
  readonly #foldDirectories = new Set<string>();
  #individual = 0;
  #cappedFindings = 0;
  #cappedAllExcused = true;

  constructor(private readonly deps: FileActivityDeps) {
    this.#sourceSet = new Set(deps.source.paths);
  }

  isSource(path: string): boolean {
    return this.#sourceSet.has(path);
  }

  apply(change: FileChange): void {
    switch (change.kind) {
      case 'modify': {
        const pending = this.#pending.get(change.path);
        if (pending !== undefined && pending !== change.pid) this.#written(change.path, pending);
        if (pending !== change.pid) this.#pending.set(change.path, change.pid);
        return;
      }
      case 'close-write': {
        const pending = this.#pending.get(change.path);
        if (pending !== undefined) {
          this.#pending.delete(change.path);
          this.#written(change.path, pending);
        } else if (this.isSource(change.path) && this.deps.hash(change.path) !== this.#stateOf(change.path).last) {
          this.#written(change.path, change.pid); // written through a mapping: no modify event, but new content
        }
        return;
      }
      case 'create':
        if (this.isSource(change.path)) this.#sourceChange({ action: 'create', path: change.path }, [{ path: change.path, action: 'create' }], change.pid);
        else this.#other('create', change.path, undefined, change.pid);
        return;
      case 'delete':
        this.#flushPending(change.path);
        if (this.isSource(change.path)) this.#sourceChange({ action: 'delete', path: change.path }, [{ path: change.path, action: 'delete' }], change.pid);
        else this.#other('delete', change.path, undefined, change.pid);
        return;
      case 'rename':
        this.#renamed(change.from, change.to, change.pid);
        return;
      case 'directory-rename':
        this.#directoryRenamed(change.from, change.to, change.pid);
        return;
    }
  }

  /** Emits the folded counts gathered so far (at a step boundary, and at the end). */
  flushFolds(): void {
    for (const fold of this.#folds.values()) {
      this.counts.foldedEvents += 1;
      this.deps.emit({
        kind: 'file',
        time: fold.time,
        action: fold.action,
        path: fold.dir,
        source: false,
        count: fold.count,
        process: fold.process,
        ...(fold.step !== undefined ? { step: fold.step } : {}),
      });
    }
    this.#folds.clear();
  }

  /**
   * After the job: pending writes; source files whose stamp changed although no
   * event said so (events lost, a filesystem not watched); files restored to
   * their original content; the last folds.
   */
  finish(): void {
    for (const [path, pid] of [...this.#pending]) {
      this.#pending.delete(path);
      this.#written(path, pid);
    }
    for (const path of this.deps.source.paths) {
      if ((this.#states.get(path)?.changes ?? 0) > 0) continue;
      if (this.deps.stamp(path) === (this.deps.source.stamps.get(path) ?? null)) continue;
      const before = this.deps.source.hashes.get(path) ?? null;
      const after = this.deps.hash(path);
      if (after === before) continue; // metadata only (chmod, touch)
      this.counts.unseen += 1;
      this.#finding(sourceChangedUnseenDraft({ path, before, after }, this.deps.now()));
    }
    for (const [path, state] of this.#states) {
      if (state.changes === 0 || this.deps.hash(path) !== state.before) continue;
      this.#finding(
        sourceRestoredDraft(
          {
            path,
            before: state.before,
            seen: [...state.seen],
            changes: state.changes,
            writers: [...state.writers.values()],
            excusedBy: state.unexcused ? null : [...state.excusedBy],
            ...(state.step !== undefined ? { step: state.step } : {}),
          },
          this.deps.now(),
        ),
      );
    }
    if (this.#cappedFindings > 0) {
      this.deps.emit(sourceFindingsCappedDraft(MAX_SOURCE_FINDINGS, this.#cappedFindings, this.#cappedAllExcused, this.deps.now()));
    }
    this.flushFolds();
  }

  #flushPending(path: string): void {
    const pid = this.#pending.get(path);
    if (pid === undefined) return;
    this.#pending.delete(path);
    this.#written(path, pid);
  }

  #written(path: string, pid: number): void {
    if (this.isSource(path)) this.#sourceChange({ action: 'write', path }, [{ path, action: 'write' }], pid);
    else this.#other('write', path, undefined, pid);
  }

  #renamed(from: string | null, to: string | null, pid: number): void {
    if (from !== null) this.#flushPending(from);
    const fromSource = from !== null && this.isSource(from);
    const toSource = to !== null && this.isSource(to);
    if (!fromSource && !toSource) {
      if (from === null && to !== null) this.#other('create', to, undefined, pid);
      else if (to === null && from !== null) this.#other('delete', from, undefined, pid);
      else if (from !== null && to !== null) this.#other('rename', from, to, pid);
      return;
    }
    const affected: { path: string; action: SourceChangeAction; to?: string | null }[] = [];
    if (fromSource) affected.push({ path: from, action: 'rename', to });
    if (toSource) affected.push({ path: to, action: 'create' });
    const event =
      from === null ? { action: 'create' as const, path: to ?? '' } : to === null ? { action: 'delete' as const, path: from } : { action: 'rename' as const, path: from, to };
    this.#sourceChange(event, affected, pid);
  }

  #directoryRenamed(from: string, to: string | null, pid: number): void {
    if (maySource(from)) {
      for (const path of this.#sourceUnder(from)) {
        this.#renamed(path, to === null ? null : `${to}${path.slice(from.length)}`, pid);
      }
    }
    if (to !== null) this.#other('rename', from, to, pid);
    else this.#other('delete', from, undefined, pid);
  }

  /** Source paths at or below `dir`, by binary search in the sorted list. */
  #sourceUnder(dir: string): string[] {
    const paths = this.deps.source.paths;
    const prefix = `${dir}/`;
    let low = 0;
    let high = paths.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((paths[middle] ?? '') < prefix) low = middle + 1;
      else high = middle;
    }
    const out: string[] = [];
    for (let i = low; i < paths.length && (paths[i] ?? '').startsWith(prefix); i++) out.push(paths[i] ?? '');
    return out.filter((path) => isWithin(path, dir));
  }

  #stateOf(path: string): SourceState {
    let state = this.#states.get(path);
    if (!state) {
      const before = this.deps.source.hashes.get(path) ?? null;
      state = { before, last: before, seen: new Set(), changes: 0, writers: new Map(), excusedBy: new Set(), unexcused: false };
      this.#states.set(path, state);
    }
    return state;
  }

  /** One file event for the change; one finding per affected source file (the first change by each process). */
  #sourceChange(
    event: { action: FileAction; path: string; to?: string },
    affected: readonly { path: string; action: SourceChangeAction; to?: string | null }[],
    pid: number,
  ): void {
    const writer = this.deps.writer(pid);
    const shownPath = event.to ?? event.path;
    const sha256 = event.action === 'delete' ? this.deps.hash(event.path) : this.deps.hash(shownPath);
    this.counts[event.action] += 1;
    this.counts.source += 1;
    const emitted = this.deps.emit({
      kind: 'file',
      time: this.deps.now(),
      action: event.action,
      path: event.path,
      ...(event.to !== undefined ? { to: event.to } : {}),
      source: true,
      sha256,
      process: writer.ref,
    });
    const step = emitted.step;
    for (const change of affected) {
      const state = this.#stateOf(change.path);
      const after = this.deps.hash(change.path);
      state.changes += 1;
      state.last = after;
      if (after !== state.before) state.seen.add(after);
      state.writers.set(pid, writer.ref);
      if (state.step === undefined && step !== undefined) state.step = step;
      const excuse = this.deps.excuse.match({ exe: writer.exe, argv: writer.argv }, change.path);
      if (excuse) state.excusedBy.add(excuse.text);
      else state.unexcused = true;
      const key = `${change.path}\0${pid}`;
      if (this.#found.has(key)) continue;
      this.#found.add(key);
      const draft = sourceTamperedDraft(
        {
          path: change.path,
          action: change.action,
          ...(change.action === 'rename' ? { to: change.to ?? null } : {}),
          before: state.before,
          after,
          process: writer.ref,
          ...(step !== undefined ? { step } : {}),
          excusedBy: excuse?.text ?? null,
        },
        this.deps.now(),
      );
      if (this.counts.findings >= MAX_SOURCE_FINDINGS) {
        this.#cappedFindings += 1;
        if (!excuse) this.#cappedAllExcused = false;
        continue;
      }
      this.#finding(draft);
    }
  }

  #finding(draft: Extract<UnsequencedEvent, { kind: 'detection' }>): void {
    if (draft.id === SOURCE_TAMPERED) this.counts.findings += 1;
    this.deps.emit(draft);
  }

  #foldDirectoryOf(path: string): string {
    const dir = foldDirectory(path);
    if (this.#foldDirectories.has(dir)) return dir;
    if (this.#foldDirectories.size >= MAX_FOLD_DIRECTORIES) return './';
    this.#foldDirectories.add(dir);
    return dir;
  }

  #other(action: FileAction, path: string, to: string | undefined, pid: number): void {
    this.counts[action] += 1;
    const dir = this.#foldDirectoryOf(path);
    const shown = this.#perDirectory.get(dir) ?? 0;
    const writer = this.deps.writer(pid);
    if (shown < INDIVIDUAL_PER_DIRECTORY && this.#individual < INDIVIDUAL_PER_RUN) {
      this.#perDirectory.set(dir, shown + 1);
      this.#individual += 1;
      this.deps.emit({ kind: 'file', time: this.deps.now(), action, path, ...(to !== undefined ? { to } : {}), source: false, process: writer.ref });
      return;
    }
    this.counts.folded += 1;
    const step = this.deps.stepOf?.(pid);
    const key = `${dir}\0${action}\0${writer.exe ?? ''}\0${step ?? ''}`;
    const fold = this.#folds.get(key);
    if (fold) fold.count += 1;
    else this.#folds.set(key, { dir, action, time: this.deps.now(), process: writer.ref, step, count: 1 });
  }
}
