/**
 * The process sensor: every fork, exec and exit of the job (exec scope: the
 * sandboxed command's tree; agent scope: the whole machine, the job's tree
 * marked), the process table other sensors read, and the attribution of
 * network events to the process that caused them.
 *
 * Mechanism (see /work/shared/mechanisms.md): two kernel streams, because
 * neither alone is enough.
 * - The proc connector reports every fork, exec and exit, from the task
 *   itself, in order, with host pids and the exit status — but not what was
 *   exec'd, and /proc is gone for many short-lived processes by the time it
 *   is read.
 * - Audit (runwall's own keyed rules, read over the multicast group beside any
 *   auditd) reports each exec with its argv, cwd, exe and uid taken from the
 *   syscall itself, so a 1 ms process is complete; and every connect/send to
 *   an IPv4/IPv6 address with pid and destination, which attribution joins to
 *   the firewall's log.
 * Forks stay in the table only (a build forks far more than it execs); execs
 * and exits of the job become `process` events. Without audit (not in the
 * kernel, or locked) the sensor still runs on the connector alone, reading
 * /proc for what it can, and says so.
 */
import { networkInterfaces } from 'node:os';
import type { ProcessEvent, ProcessRef, UnsequencedEvent } from '../../../protocol/index.js';
import {
  AuditStream,
  ProcConnector,
  shellExitCode,
  type AuditActivity,
  type AuditStreamProblem,
  type ProcConnectorProblem,
  type ProcEvent,
} from '../../platform/index.js';
import type { Sensor, SensorContext, SensorFactory } from '../sensor.js';
import { SocketCallLog, attributeEvent, isLoopbackAddress, processRefOf, type GovernedNetns } from './attribution.js';
import { agentMembership, execMembership } from './membership.js';
import { dockerImageOf, readCgroup, readLiveDetails, readNetns, readPpid, scanProcesses } from './proc-files.js';
import { PROCESS_TABLE_KEY, ProcessRegistry, containerOf, type ExecDetails, type ProcessRecord } from './process-table.js';

/**
 * An exec announced by the kernel waits for its audit record until audit's
 * stream has moved this far past it (records come in the order the calls
 * returned: a later one means this one was lost) ...
 */
const PENDING_EXEC_PASSED_MS = 500;
/** ... or, when nothing else comes through audit, this long. */
const PENDING_EXEC_MAX_MS = 10_000;
const PENDING_SWEEP_MS = 250;
/** Reports of lost kernel events are limited to one per this interval. */
const LOSS_REPORT_INTERVAL_MS = 5_000;
/** At stop: time for the kernel to deliver the last records of a job that just exited (polled, bounded). */
const SETTLE_MS = 50;
const SETTLE_MAX_MS = 2_000;
/** How long the governed namespace's own addresses are taken as read (they change rarely: DHCP, a bridge brought up). */
const OWN_ADDRESSES_FRESH_MS = 1_000;

export const startProcessSensor: SensorFactory = async (context: SensorContext): Promise<Sensor> => {
  const { pipeline, scope } = context;
  const emit = (event: UnsequencedEvent): void => void pipeline.emit(event);
  const now = (): string => new Date().toISOString();

  // The connector stamps events with CLOCK_MONOTONIC (as process.hrtime does): one offset turns them into wall time.
  const wallOffsetMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
  const wallMs = (monotonicUs: number): number => Math.round(monotonicUs / 1000 + wallOffsetMs);

  let registry: ProcessRegistry;
  const membership =
    scope.kind === 'exec'
      ? execMembership({ jobCgroup: scope.cgroup, launcherParent: process.pid, cgroupOf: readCgroup })
      : agentMembership({ agentPid: scope.agentPid, runnerPresent: () => registry.runnerPresent });
  let listenerFailures = 0;
  registry = new ProcessRegistry({
    membership,
    cgroupOf: scope.kind === 'agent' ? readCgroup : null,
    onListenerError: (error) => {
      if (listenerFailures++ < 10) emit({ kind: 'agent', time: now(), action: 'error', code: 'RW_INTERNAL', message: `a process table listener failed: ${error instanceof Error ? error.message : String(error)}` });
    },
  });
  if (scope.kind === 'agent') registry.seed(scanProcesses());

  const reported = new WeakSet<ProcessRecord>();
  registry.afterExec = (record) => {
    if (record.role !== 'job') return;
    reported.add(record);
    emit(execEvent(registry, record));
  };
  registry.afterExit = (record) => {
    if (record.role !== 'job' || !reported.has(record) || record.endMs === null) return;
    const event: Omit<ProcessEvent, 'seq'> = { kind: 'process', time: new Date(record.endMs).toISOString(), action: 'exit', pid: record.pid, ppid: record.ppid };
    if (record.exe !== null) event.exe = record.exe;
    if (record.exitCode !== null) event.exitCode = record.exitCode;
    emit(event);
  };

  let lastLossReport = 0;
  const problem = (reported: ProcConnectorProblem | AuditStreamProblem): void => {
    if (reported.code === 'RW_PROCESS_EVENTS_LOST') {
      if (Date.now() - lastLossReport < LOSS_REPORT_INTERVAL_MS) return;
      lastLossReport = Date.now();
    }
    emit({ kind: 'agent', time: now(), action: 'error', code: reported.code, message: reported.message });
  };

  let audit: AuditStream | null = null;
  const log = new SocketCallLog();

  // exec scope: only what descends from runwall's own children can be the job; the rest of a busy
  // machine is not even put in the table (agent scope watches it all).
  const machineWide = scope.kind === 'agent';
  const live = (pid: number): boolean => registry.record(pid)?.endMs === null;

  const onProcEvent = (event: ProcEvent): void => {
    switch (event.kind) {
      case 'fork':
        if (event.childPid !== event.childTgid) return; // a thread
        if (machineWide || event.parentTgid === process.pid || live(event.parentTgid)) registry.fork(event.parentTgid, event.childTgid, wallMs(event.monotonicUs));
        return;
      case 'exec': {
        if (!machineWide && !live(event.tgid)) return;
        const known = registry.record(event.tgid);
        const ppidHint = known && known.endMs === null ? null : readPpid(event.tgid);
        if (audit) {
          registry.execAnnounced(event.tgid, wallMs(event.monotonicUs), ppidHint);
        } else {
          // No audit: what /proc shows now is the best there is (often nothing for a short-lived process).
          const details = readLiveDetails(event.tgid);
          registry.execDetails({ ...(details ?? emptyDetails(event.tgid)), ppid: details?.ppid ?? ppidHint, timeMs: wallMs(event.monotonicUs) }, false);
        }
        return;
      }
      case 'exit':
        if (event.pid === event.tgid) registry.exit(event.tgid, wallMs(event.monotonicUs), shellExitCode(event.status));
        return;
      case 'uid':
        if (event.pid === event.tgid) registry.uid(event.tgid, event.ruid);
        return;
      default:
        return;
    }
  };

  const onAudit = (activity: AuditActivity): void => {
    // The connector's fork and exec announcement for this activity are queued before it; when they
    // have not been read yet (both sockets became readable at once), take them first.
    const known = registry.record(activity.pid);
    if (!known || (activity.kind === 'exec' && known.pendingExecs === 0)) connector.drainNow();
    if (!machineWide && registry.record(activity.pid) === undefined) return;
    if (activity.kind === 'exec') {
      registry.execDetails(
        { pid: activity.pid, ppid: activity.ppid, exe: activity.exe, argv: activity.argv, cwd: activity.cwd, uid: activity.uid, comm: activity.comm, timeMs: activity.timeMs },
        true,
      );
      return;
    }
    const record = registry.record(activity.pid);
    let ref: ProcessRef | (() => ProcessRef);
    if (record) {
      const program = { exe: activity.exe ?? record.exe, argv: record.argv }; // what it ran at the call
      let built: ProcessRef | null = null;
      ref = () => (built ??= processRefOf(registry, record, program));
    } else {
      ref = { pid: activity.pid, ppid: activity.ppid, ...(activity.exe !== null ? { exe: activity.exe } : {}) };
    }
    const netns = machineWide ? readNetns(activity.pid) : null;
    log.add({ pid: activity.pid, timeMs: activity.timeMs, address: activity.address, port: activity.port, inJob: record?.role === 'job', netns, ref });
  };

  const connector = ProcConnector.open(onProcEvent, problem);
  try {
    audit = await AuditStream.open(onAudit, problem);
  } catch (error) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'RW_AUDIT_UNAVAILABLE';
    emit({
      kind: 'agent',
      time: now(),
      action: 'error',
      code,
      message: `process sensor without audit: ${error instanceof Error ? error.message : String(error)}; execs are recorded from /proc (short-lived ones may lack argv) and network events are not attributed to processes`,
    });
  }

  const sync = (): void => {
    connector.drainNow();
    audit?.drainNow();
  };
  const fill = (pid: number): Omit<ExecDetails, 'timeMs'> | null => readLiveDetails(pid);
  const due = (sinceMs: number): boolean =>
    audit === null || audit.latestRecordMs > sinceMs + PENDING_EXEC_PASSED_MS || Date.now() - sinceMs > PENDING_EXEC_MAX_MS;
  const sweep = setInterval(() => {
    sync();
    registry.expirePending(due, fill);
  }, PENDING_SWEEP_MS);
  sweep.unref();

  // Events come out in bursts (held DNS answers, folded connections released by one timer): one read of the
  // kernel's queues per burst is as fresh as one per event, without two syscalls for each of thousands.
  let syncedThisTurn = false;
  const syncOncePerTurn = (): void => {
    if (syncedThisTurn) return;
    syncedThisTurn = true;
    sync();
    queueMicrotask(() => {
      syncedThisTurn = false;
    });
  };
  // exec scope: the table holds the job's tree only, all in its sandbox's namespace; agent scope: audit sees every namespace.
  const governed = machineWide ? governedNetns() : null;
  pipeline.enrich((event) => {
    if (event.kind === 'process' || event.kind === 'agent' || event.kind === 'step' || event.kind === 'detection') return event;
    syncOncePerTurn(); // the records of what caused this event may still be queued
    return attributeEvent(event, log, registry, governed);
  });
  context.shared.set(PROCESS_TABLE_KEY, registry);

  let stopped = false;
  return {
    name: 'process',
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(sweep);
      // A loaded machine delivers audit's records late: wait (bounded) for what is still pending.
      const settleUntil = Date.now() + SETTLE_MAX_MS;
      do {
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        sync();
      } while (audit !== null && registry.pending > 0 && Date.now() < settleUntil);
      registry.expirePending(() => true, fill);
      // The table and the call log stay: events released later (folded connections) are still attributed.
      const failures: string[] = [];
      await audit?.close().catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
      await connector.close();
      if (failures.length > 0) throw new Error(failures.join('; '));
    },
  };
};

/** The agent's own network namespace (the one it governs) and its addresses, re-read at most once a second. */
function governedNetns(): GovernedNetns | null {
  const inode = readNetns(process.pid);
  if (inode === null) return null;
  let own = new Set<string>();
  let readAtMs = -Infinity;
  return {
    inode,
    isOwnAddress(address) {
      if (isLoopbackAddress(address)) return true;
      if (Date.now() - readAtMs > OWN_ADDRESSES_FRESH_MS) {
        own = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address.toLowerCase())));
        readAtMs = Date.now();
      }
      return own.has(address.toLowerCase());
    },
  };
}

function emptyDetails(pid: number): Omit<ExecDetails, 'timeMs'> {
  return { pid, ppid: null, exe: null, argv: [], cwd: null, uid: null, comm: null };
}

function execEvent(table: ProcessRegistry, record: ProcessRecord): Omit<ProcessEvent, 'seq'> {
  const ref = processRefOf(table, record);
  const event: Omit<ProcessEvent, 'seq'> = {
    kind: 'process',
    time: new Date(record.execTimeMs ?? Date.now()).toISOString(),
    action: 'exec',
    pid: record.pid,
    ppid: record.ppid,
    argv: [...record.argv],
    process: { pid: record.pid, ...(ref.name !== undefined ? { name: ref.name } : {}), ancestry: ref.ancestry ?? [] },
  };
  if (record.exe !== null) event.exe = record.exe;
  if (record.cwd !== null) event.cwd = record.cwd;
  if (record.uid !== null) event.uid = record.uid;
  const container = containerOf(record);
  if (container) {
    const image = container.id ? dockerImageOf(container.id) : null;
    event.container = image ? { ...container, image } : container;
  }
  return event;
}
