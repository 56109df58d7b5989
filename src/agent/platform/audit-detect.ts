/**
 * The detector's audit rules, read through the process's one audit reader
 * (audit-hub.ts), with their own keys (`runwall-<pid>-detect-…`) so neither
 * consumer removes the other's rules. Rules: ptrace attach, process_vm_readv/
 * writev, signals to the agent, and file watches added while running (guarded
 * files, a protected process's /proc/PID/mem). Meaning is
 * audit-detect-message.ts (pure). Switching audit on and back off is the hub's.
 */
import { RunwallError } from '../../protocol/index.js';
import { auditArch } from './audit-control.js';
import { AuditHub } from './audit-hub.js';
import { encodeAuditRule, type AuditRecord } from './audit-message.js';
import { AUDIT_PERM, detectKeyBase, detectSyscallRules, encodeWatchRule, interpretDetectAuditEvent, watchFileId, type DetectAuditActivity } from './audit-detect-message.js';

export interface DetectAuditOptions {
  /** The agent to protect from signals (agent mode), or null. */
  readonly agentPid: number | null;
}

export class DetectAuditStream {
  readonly #base = detectKeyBase(process.pid);
  readonly #rules: Uint8Array[] = [];
  readonly #watches = new Map<string, Uint8Array>();
  #unsubscribe: (() => void) | null = null;
  #closed = false; // set first in close(): no rule is added after

  private constructor(
    private readonly hub: AuditHub,
    private readonly onActivity: (activity: DetectAuditActivity) => void,
    private readonly onProblem: (message: string) => void,
  ) {}

  /** RW_PLATFORM_MISSING without audit; RW_AUDIT_UNAVAILABLE when the kernel refuses; nothing is left installed then. */
  static async open(options: DetectAuditOptions, onActivity: (activity: DetectAuditActivity) => void, onProblem: (message: string) => void): Promise<DetectAuditStream> {
    const specs = detectSyscallRules(auditArch(), detectKeyBase(process.pid), options.agentPid);
    const hub = await AuditHub.acquire();
    const stream = new DetectAuditStream(hub, onActivity, onProblem);
    try {
      stream.#unsubscribe = hub.subscribe({ topic: 'detect', onEvent: (records) => stream.#deliver(records), onProblem: (problem) => onProblem(problem.message) });
      for (const spec of specs) {
        const rule = encodeAuditRule(spec);
        await hub.control.addRule(rule);
        stream.#rules.push(rule);
      }
      return stream;
    } catch (error) {
      await stream.close().catch(() => undefined);
      throw error;
    }
  }

  /** Watches opens for reading of `/proc/<pid>/mem` (and, for a process in its own PID namespace, of the path its namespace sees). */
  async watchMemory(pid: number, innerPid: number | null): Promise<void> {
    const paths = [`/proc/${pid}/mem`];
    if (innerPid !== null && innerPid !== pid) paths.push(`/proc/${pid}/root/proc/${innerPid}/mem`);
    for (const [i, path] of paths.entries()) await this.#watch(`mem:${pid}:${i}`, path, AUDIT_PERM.READ, `${this.#base}-mem-${pid}`);
  }

  async unwatchMemory(pid: number): Promise<void> {
    for (const id of [...this.#watches.keys()].filter((k) => k.startsWith(`mem:${pid}:`))) await this.#unwatch(id);
  }

  /**
   * Watches writes and attribute changes of a file; its activity comes back
   * with `fileId` = watchFileId(path). Missing parents are skipped (false).
   */
  async watchFile(path: string): Promise<boolean> {
    const fileId = watchFileId(path);
    return this.#watch(`file:${path}`, path, AUDIT_PERM.WRITE | AUDIT_PERM.ATTR, `${this.#base}-file-${fileId}`);
  }

  async #watch(id: string, path: string, perm: number, key: string): Promise<boolean> {
    if (this.#closed || this.#watches.has(id)) return this.#watches.has(id);
    const rule = encodeWatchRule(path, perm, key);
    try {
      await this.hub.control.addRule(rule);
    } catch (error) {
      // The process is gone, or the file's directory does not exist here: nothing to watch.
      if (error instanceof RunwallError && ['ENOENT', 'ESRCH', 'ENOTDIR', 'EACCES'].includes(String(error.details['errno']))) return false;
      this.onProblem(`cannot watch ${path}: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
    this.#watches.set(id, rule);
    return true;
  }

  async #unwatch(id: string): Promise<void> {
    const rule = this.#watches.get(id);
    if (!rule) return;
    this.#watches.delete(id);
    await this.hub.control.deleteRule(rule).catch(() => undefined);
  }

  #deliver(records: readonly AuditRecord[]): void {
    const activity = interpretDetectAuditEvent(records, this.#base);
    if (!activity) return;
    try {
      this.onActivity(activity);
    } catch (error) {
      this.onProblem(`audit (detect): the activity handler threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const failures: string[] = [];
    for (const rule of [...this.#rules, ...this.#watches.values()]) {
      await this.hub.control.deleteRule(rule).catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    }
    this.#watches.clear();
    // What the kernel still holds for us is judged before we unsubscribe.
    this.hub.drainNow('detect');
    this.#unsubscribe?.();
    await this.hub.release().catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    if (failures.length > 0) throw new RunwallError('RW_TEARDOWN_FAILED', `audit rules ${this.#base}: ${failures.join('; ')}`);
  }
}
