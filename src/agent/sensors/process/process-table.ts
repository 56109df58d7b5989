/**
 * The process table: every process the sensor has seen, by host pid, with its
 * creator, its programs and its end. Published to the other sensors as
 * `context.shared.get('processes')` (a `ProcessTable`); the process sensor
 * feeds it (`ProcessRegistry`). No I/O: what needs the kernel or /proc is
 * passed in.
 *
 * Records point to their creator's record, not its pid, so ancestry stays
 * right when a pid is reused. Exited processes are kept (bounded) so events
 * that arrive after a process ended are still attributed.
 */
import type { Membership } from './membership.js';
import { containerIdOf } from './tool-name.js';

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly cwd: string | null;
  readonly uid: number | null;
  readonly startTime: string;
  readonly endTime: string | null;
  readonly exitCode: number | null;
  readonly cgroup: string | null;
  readonly inJob: boolean;
}

export interface ProcessTable {
  get(pid: number): ProcessInfo | undefined;
  /** Nearest first, up to the job's root (or pid 1). */
  ancestry(pid: number): readonly ProcessInfo[];
  /** Called for every exec (after the table is updated) — e.g. STEPS assigns steps by ancestry, DETECT inspects argv. */
  onExec(listener: (info: ProcessInfo) => void): () => void;
  onExit(listener: (info: ProcessInfo) => void): () => void;
}

/** The key under which the process sensor publishes its table in `SensorContext.shared`. */
export const PROCESS_TABLE_KEY = 'processes';

export type ProcessRole =
  /** The monitored job's tree. */
  | 'job'
  /** The rest of the machine. */
  | 'outside'
  /** runwall itself (agent mode) and what it spawns. */
  | 'agent'
  /** The CI runner's own processes; `runner-worker` starts the job's steps. */
  | 'runner'
  | 'runner-worker'
  /** `runwall exec` plumbing around the job: see membership.ts. */
  | 'launcher'
  | 'sandbox-init'
  | 'sandbox-helper';

/** The table's own, mutable view of one process. */
export interface ProcessRecord {
  readonly pid: number;
  readonly parent: ProcessRecord | null;
  /** Live children, so a role learnt late (an exec's details arrive after its forks) reaches them. */
  readonly children: Set<ProcessRecord>;
  ppid: number;
  exe: string | null;
  argv: readonly string[];
  cwd: string | null;
  uid: number | null;
  comm: string | null;
  startMs: number;
  /** When its current program was exec'd (null: the program it was forked with, or seeded). */
  execTimeMs: number | null;
  endMs: number | null;
  exitCode: number | null;
  cgroup: string | null;
  role: ProcessRole;
  /** Known from the /proc scan at start: it existed before monitoring began. */
  seeded: boolean;
  /** It has run a program of its own (not only its creator's, inherited at fork). */
  ownProgram: boolean;
  /** Execs the kernel announced whose details (audit) have not arrived yet. */
  pendingExecs: number;
  pendingSinceMs: number;
  /** Exec details that arrived before the kernel's announcement of the exec. */
  detailsAhead: number;
  /** Execs given up on (told without details) whose details may still come late. */
  expiredExecs: number;
  /** Its exit arrived while an exec was pending: told once the exec is. */
  exitHeld: boolean;
  /** exec scope: the sandbox helper ran setpriv, so its next program is the job's. */
  sawSetpriv: boolean;
  snapshot: ProcessInfo | null;
}

export interface ExecDetails {
  readonly pid: number;
  /** From audit or /proc; used when the process was not known yet. */
  readonly ppid: number | null;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly cwd: string | null;
  readonly uid: number | null;
  readonly comm: string | null;
  readonly timeMs: number;
}

export interface SeedEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly cwd: string | null;
  readonly uid: number | null;
  readonly comm: string | null;
  readonly startMs: number;
  readonly cgroup: string | null;
}

export interface RegistryOptions {
  readonly membership: Membership;
  /** Exited processes kept for late lookups before the oldest are forgotten. */
  readonly retainExited?: number;
  /** Reads a live process's cgroup when an exec needs it (agent scope: containers); null: never read. */
  readonly cgroupOf?: ((pid: number) => string | null) | null;
  /** A listener threw: the table goes on; this says so. */
  readonly onListenerError?: (error: unknown) => void;
}

type Listener = (info: ProcessInfo) => void;
/** Told after the public listeners: the sensor emits its events here, once steps and detections had their look. */
export type RecordListener = (record: ProcessRecord, info: ProcessInfo) => void;

const ANCESTRY_MAX = 512;
/** Audit's clock is coarse (a jiffy): details stamped this much after an exit still belong to the exited process. */
const LATE_DETAILS_SLACK_MS = 50;

export class ProcessRegistry implements ProcessTable {
  readonly #byPid = new Map<number, ProcessRecord>();
  readonly #exited: ProcessRecord[] = [];
  #exitedHead = 0;
  readonly #execListeners = new Set<Listener>();
  readonly #exitListeners = new Set<Listener>();
  readonly #membership: Membership;
  readonly #retainExited: number;
  readonly #cgroupOf: ((pid: number) => string | null) | null;
  #liveRunners = 0;
  readonly #onListenerError: (error: unknown) => void;
  afterExec: RecordListener | null = null;
  afterExit: RecordListener | null = null;

  constructor(options: RegistryOptions) {
    this.#membership = options.membership;
    this.#retainExited = options.retainExited ?? 50_000;
    this.#cgroupOf = options.cgroupOf ?? null;
    this.#onListenerError = options.onListenerError ?? (() => undefined);
  }

  // ---- ProcessTable ----

  get(pid: number): ProcessInfo | undefined {
    const record = this.#byPid.get(pid);
    return record ? this.info(record) : undefined;
  }

  ancestry(pid: number): readonly ProcessInfo[] {
    const record = this.#byPid.get(pid);
    return record ? this.ancestorsOf(record).map((r) => this.info(r)) : [];
  }

  onExec(listener: Listener): () => void {
    this.#execListeners.add(listener);
    return () => this.#execListeners.delete(listener);
  }

  onExit(listener: Listener): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  // ---- For the sensor ----

  record(pid: number): ProcessRecord | undefined {
    return this.#byPid.get(pid);
  }

  /** Nearest first: for a job process up to the job's root, otherwise up to the first process. */
  ancestorsOf(record: ProcessRecord): ProcessRecord[] {
    const chain: ProcessRecord[] = [];
    const inJob = record.role === 'job';
    for (let at = record.parent; at !== null && chain.length < ANCESTRY_MAX; at = at.parent) {
      if (inJob && at.role !== 'job') break;
      chain.push(at);
    }
    return chain;
  }

  get runnerPresent(): boolean {
    return this.#liveRunners > 0;
  }

  info(record: ProcessRecord): ProcessInfo {
    record.snapshot ??= Object.freeze({
      pid: record.pid,
      ppid: record.ppid,
      exe: record.exe,
      argv: record.argv,
      cwd: record.cwd,
      uid: record.uid,
      startTime: new Date(record.startMs).toISOString(),
      endTime: record.endMs === null ? null : new Date(record.endMs).toISOString(),
      exitCode: record.exitCode,
      cgroup: record.cgroup,
      inJob: record.role === 'job',
    });
    return record.snapshot;
  }

  /** Processes that existed when monitoring began, parents before children. */
  seed(entries: readonly SeedEntry[]): void {
    const byPid = new Map(entries.map((entry) => [entry.pid, entry]));
    const ordered: ProcessRecord[] = [];
    const visit = (entry: SeedEntry, depth: number): ProcessRecord => {
      const known = this.#byPid.get(entry.pid);
      if (known) return known;
      const parentEntry = byPid.get(entry.ppid);
      const parent = parentEntry && parentEntry.pid !== entry.pid && depth < ANCESTRY_MAX ? visit(parentEntry, depth + 1) : (this.#byPid.get(entry.ppid) ?? null);
      const record = this.#newRecord(entry.pid, parent, entry.ppid, entry.startMs);
      Object.assign(record, { exe: entry.exe, argv: Object.freeze([...entry.argv]), cwd: entry.cwd, uid: entry.uid, comm: entry.comm, cgroup: entry.cgroup, seeded: true, ownProgram: true });
      this.#setRole(record, this.#membership.forked(record, parent));
      this.#setRole(record, this.#membership.execed(record));
      ordered.push(record);
      return record;
    };
    for (const entry of entries) visit(entry, 0);
    // Whether a runner is on the machine is known only once all are seen: decide again, parents first.
    for (const record of ordered) {
      this.#setRole(record, this.#membership.forked(record, record.parent));
      this.#setRole(record, this.#membership.execed(record));
    }
  }

  /** A new process (not a thread): `creator` is the process that forked it. */
  fork(creator: number, child: number, timeMs: number): void {
    const existing = this.#byPid.get(child);
    // The exec details of a process can come before its fork when two sockets race; keep them.
    if (existing && existing.endMs === null && existing.parent?.pid === creator) {
      existing.startMs = Math.min(existing.startMs, timeMs);
      existing.snapshot = null;
      return;
    }
    const parent = this.#byPid.get(creator) ?? null;
    const record = this.#newRecord(child, parent, creator, timeMs);
    if (parent) {
      Object.assign(record, { exe: parent.exe, argv: parent.argv, cwd: parent.cwd, uid: parent.uid, comm: parent.comm, cgroup: parent.cgroup });
    }
    this.#setRole(record, this.#membership.forked(record, parent));
  }

  /** The kernel says `pid` exec'd; its details (argv, cwd) follow from audit, or never (see expirePending). */
  execAnnounced(pid: number, timeMs: number, ppidHint: number | null): void {
    const known = this.#byPid.get(pid);
    const record = known && known.endMs === null ? known : this.#adopt(pid, ppidHint, timeMs);
    this.#changeRole(record, this.#membership.announced(record));
    if (record.detailsAhead > 0) {
      record.detailsAhead -= 1;
      return;
    }
    // The agent's own helpers (nft, iptables-restore) are never reported, so nothing waits for their details:
    // the agent starts its sensors while it sets up, and audit may not have been listening when they ran.
    if (record.role === 'agent') return;
    if (record.pendingExecs === 0) record.pendingSinceMs = timeMs;
    record.pendingExecs += 1;
  }

  /** What a process exec'd (audit, or /proc when audit is unavailable). Tells the listeners. */
  execDetails(details: ExecDetails, announced: boolean): void {
    let record = this.#byPid.get(details.pid);
    // Details of an exec of a process that has since exited (they come late) belong to it; later ones to a new holder of the pid.
    const stale = record !== undefined && record.endMs !== null && !record.exitHeld && details.timeMs > record.endMs + LATE_DETAILS_SLACK_MS;
    if (!record || stale) record = this.#adopt(details.pid, details.ppid, details.timeMs);
    let late = false;
    if (announced) {
      if (record.pendingExecs > 0) record.pendingExecs -= 1;
      else if (record.expiredExecs > 0) {
        record.expiredExecs -= 1;
        late = true;
      } else record.detailsAhead += 1;
    }
    record.exe = details.exe;
    record.argv = Object.freeze([...details.argv]);
    if (details.cwd !== null) record.cwd = details.cwd;
    if (details.uid !== null) record.uid = details.uid;
    if (details.comm !== null) record.comm = details.comm;
    record.ownProgram = true;
    record.execTimeMs = details.timeMs;
    if (this.#cgroupOf && record.endMs === null) record.cgroup = this.#cgroupOf(record.pid) ?? record.cgroup;
    record.snapshot = null;
    this.#changeRole(record, this.#membership.execed(record));
    // Details of an exec already told without them: the table is corrected, the exec is not told twice.
    if (late) return;
    this.#tellExec(record);
    if (record.exitHeld && record.pendingExecs === 0) {
      record.exitHeld = false;
      this.#tellExit(record);
    }
  }

  exit(pid: number, timeMs: number, exitCode: number): void {
    const record = this.#byPid.get(pid);
    if (!record || record.endMs !== null) return;
    record.endMs = timeMs;
    record.exitCode = exitCode;
    record.snapshot = null;
    if (record.role === 'runner' || record.role === 'runner-worker') this.#liveRunners -= 1;
    record.parent?.children.delete(record);
    this.#exited.push(record);
    this.#forgetOldExited();
    if (record.pendingExecs > 0) record.exitHeld = true;
    else this.#tellExit(record);
  }

  uid(pid: number, uid: number): void {
    const record = this.#byPid.get(pid);
    if (!record) return;
    record.uid = uid;
    record.snapshot = null;
  }

  /**
   * Execs whose details are given up on (`due` says when: audit lost them, or
   * has moved on past them): told with what is known, so no exec or exit is
   * held forever. `fill` may supply details from /proc while the process lives.
   */
  expirePending(due: (pendingSinceMs: number) => boolean, fill: (pid: number) => Omit<ExecDetails, 'timeMs'> | null): number {
    let expired = 0;
    for (const record of this.#byPid.values()) {
      if (record.pendingExecs === 0 || !due(record.pendingSinceMs)) continue;
      expired += record.pendingExecs;
      const details = record.endMs === null ? fill(record.pid) : null;
      record.expiredExecs += record.pendingExecs;
      record.pendingExecs = 0;
      this.execDetails(
        details ? { ...details, timeMs: record.pendingSinceMs } : { pid: record.pid, ppid: null, exe: record.exe, argv: record.argv, cwd: null, uid: null, comm: null, timeMs: record.pendingSinceMs },
        false,
      );
    }
    return expired;
  }

  /** Execs still waiting for their details. */
  get pending(): number {
    let count = 0;
    for (const record of this.#byPid.values()) count += record.pendingExecs;
    return count;
  }

  /** Live records (for tests and the bench). */
  get size(): number {
    return this.#byPid.size;
  }

  #newRecord(pid: number, parent: ProcessRecord | null, ppid: number, startMs: number): ProcessRecord {
    const previous = this.#byPid.get(pid);
    if (previous && previous.endMs === null) {
      // A pid the kernel hands out again was free, so its old holder ended unseen.
      previous.endMs = startMs;
      if (previous.role === 'runner' || previous.role === 'runner-worker') this.#liveRunners -= 1;
    }
    const record: ProcessRecord = {
      pid,
      parent,
      children: new Set(),
      ppid,
      exe: null,
      argv: Object.freeze([]),
      cwd: null,
      uid: null,
      comm: null,
      startMs,
      execTimeMs: null,
      endMs: null,
      exitCode: null,
      cgroup: null,
      role: 'outside',
      seeded: false,
      ownProgram: false,
      pendingExecs: 0,
      pendingSinceMs: 0,
      detailsAhead: 0,
      expiredExecs: 0,
      exitHeld: false,
      sawSetpriv: false,
      snapshot: null,
    };
    this.#byPid.set(pid, record);
    parent?.children.add(record);
    return record;
  }

  /** A process seen for the first time at its exec (started before monitoring, or its fork was missed). */
  #adopt(pid: number, ppid: number | null, timeMs: number): ProcessRecord {
    const parent = ppid === null ? null : (this.#byPid.get(ppid) ?? null);
    const record = this.#newRecord(pid, parent, ppid ?? 0, timeMs);
    if (parent) Object.assign(record, { cwd: parent.cwd, uid: parent.uid, cgroup: parent.cgroup });
    this.#setRole(record, this.#membership.forked(record, parent));
    return record;
  }

  #setRole(record: ProcessRecord, role: ProcessRole): void {
    const wasRunner = record.role === 'runner' || record.role === 'runner-worker';
    const isRunner = role === 'runner' || role === 'runner-worker';
    if (record.endMs === null && wasRunner !== isRunner) this.#liveRunners += isRunner ? 1 : -1;
    if (record.role !== role) record.snapshot = null;
    record.role = role;
  }

  /**
   * Sets a role and carries the change to live descendants: their roles were
   * derived from this one when they were forked, possibly before it was known.
   */
  #changeRole(record: ProcessRecord, role: ProcessRole): void {
    if (record.role === role) return;
    this.#setRole(record, role);
    const queue: ProcessRecord[] = [record];
    // Each record is visited once per change of its own role; bounded by the live tree.
    for (let i = 0; i < queue.length && i < 100_000; i++) {
      const parent = queue[i]!;
      for (const child of parent.children) {
        if (child.endMs !== null) continue;
        let next = this.#membership.forked(child, parent);
        if (child.ownProgram) {
          const before = child.role;
          child.role = next;
          next = this.#membership.execed(child);
          child.role = before;
        }
        if (next === child.role) continue;
        this.#setRole(child, next);
        queue.push(child);
      }
    }
  }

  #tellExec(record: ProcessRecord): void {
    const info = this.info(record);
    for (const listener of this.#execListeners) this.#safely(() => listener(info));
    if (this.afterExec) this.#safely(() => this.afterExec!(record, info));
  }

  #tellExit(record: ProcessRecord): void {
    const info = this.info(record);
    for (const listener of this.#exitListeners) this.#safely(() => listener(info));
    if (this.afterExit) this.#safely(() => this.afterExit!(record, info));
  }

  #safely(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#onListenerError(error);
    }
  }

  #forgetOldExited(): void {
    while (this.#exited.length - this.#exitedHead > this.#retainExited) {
      const old = this.#exited[this.#exitedHead]!;
      this.#exitedHead += 1;
      if (this.#byPid.get(old.pid) === old) this.#byPid.delete(old.pid);
    }
    if (this.#exitedHead > 4096 && this.#exitedHead * 2 > this.#exited.length) {
      this.#exited.splice(0, this.#exitedHead);
      this.#exitedHead = 0;
    }
  }
}

/** The container a record runs in, when its cgroup names one. */
export function containerOf(record: ProcessRecord): { cgroup: string; id?: string } | undefined {
  if (record.cgroup === null) return undefined;
  const id = containerIdOf(record.cgroup);
  return id ? { cgroup: record.cgroup, id } : { cgroup: record.cgroup };
}
