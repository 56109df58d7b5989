/**
 * The process sensor's audit: runwall's keyed syscall rules
 * (`runwall-<pid>-process-<n>`: successful execs, connect() to IPv4/IPv6) and
 * their events, read through the process's one audit reader (audit-hub.ts,
 * beside whatever else uses audit: never registers as the audit daemon).
 * Rules are removed at close; rules a killed runwall left behind are removed
 * by the next one. Decoding is audit-message.ts (pure).
 *
 * Audit tags an event with the first matching rule's key only, so with two
 * runwall processes an exec of this one's job may carry the other's key:
 * every process-kind event is taken, and the sensor keeps its own job's by
 * membership. Switching audit on and back off, and the backlog, are the hub's.
 */
import { AuditHub } from './audit-hub.js';
import { encodeAuditRule, interpretAuditEvent, runwallAuditRules, type AuditActivity, type AuditRecord } from './audit-message.js';
import { auditArch } from './audit-control.js';
import { RunwallError } from '../../protocol/index.js';

export { AuditControl, auditArch, removeStaleRules, RUNWALL_RULE_KEY } from './audit-control.js';
export { AUDIT_BACKLOG } from './audit-machine-state.js';

let streamCount = 0;

export interface AuditStreamProblem {
  readonly code: 'RW_PROCESS_EVENTS_LOST' | 'RW_INTERNAL';
  readonly message: string;
}

/**
 * runwall's process rules and their events. open() installs the rules;
 * close() removes them and gives the reader back.
 */
export class AuditStream {
  #unsubscribe: (() => void) | null = null;
  #closed = false;

  private constructor(
    private readonly hub: AuditHub,
    private readonly rules: readonly Uint8Array[],
    readonly key: string,
    private readonly onActivity: (activity: AuditActivity) => void,
    private readonly onProblem: (problem: AuditStreamProblem) => void,
  ) {}

  /**
   * RW_PLATFORM_MISSING without audit in the kernel; RW_AUDIT_UNAVAILABLE when
   * the kernel refuses (locked configuration, missing capability); then nothing
   * is left installed.
   */
  static async open(onActivity: (activity: AuditActivity) => void, onProblem: (problem: AuditStreamProblem) => void): Promise<AuditStream> {
    // One key per stream: two streams in one process (tests, the bench) must not delete each other's rules.
    const key = `runwall-${process.pid}-process-${++streamCount}`;
    const rules = runwallAuditRules(auditArch(), key, process.pid).map(encodeAuditRule);
    const hub = await AuditHub.acquire();
    const stream = new AuditStream(hub, rules, key, onActivity, onProblem);
    try {
      stream.#unsubscribe = hub.subscribe({
        topic: 'process',
        onEvent: (records) => stream.#deliver(records),
        onProblem: (problem) => onProblem({ code: problem.lost ? 'RW_PROCESS_EVENTS_LOST' : 'RW_INTERNAL', message: problem.message }),
      });
      for (const rule of rules) await hub.control.addRule(rule);
      return stream;
    } catch (error) {
      await stream.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The latest syscall time among the records read so far. Records are queued
   * in the order their syscalls returned, so once it is well past a moment, the
   * records of calls made before that moment have come.
   */
  get latestRecordMs(): number {
    return this.hub.latestRecordMs;
  }

  /** Reads and delivers every record queued now: attribution calls this before it looks. */
  drainNow(): void {
    if (!this.#closed) this.hub.drainNow();
  }

  #deliver(records: readonly AuditRecord[]): void {
    const activity = interpretAuditEvent(records);
    if (!activity) return;
    try {
      this.onActivity(activity);
    } catch (error) {
      this.onProblem({ code: 'RW_INTERNAL', message: `audit: the activity handler threw: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  /** Removes runwall's rules, reads what is still queued, gives the reader back (the last one restores audit's status). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const failures: string[] = [];
    for (const rule of this.rules) {
      await this.hub.control.deleteRule(rule).catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    }
    this.hub.drainNow();
    this.#closed = true;
    this.#unsubscribe?.();
    await this.hub.release().catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    if (failures.length > 0) throw new RunwallError('RW_TEARDOWN_FAILED', `audit rules ${this.key}: ${failures.join('; ')}`);
  }
}
