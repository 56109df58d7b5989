/**
 * Kernel signals the detector needs beyond process and network events, from
 * the platform's audit rules: memory reads (ptrace attach, process_vm_readv,
 * /proc/PID/mem of a protected process), changes of guarded files, signals to
 * the agent. This file decides what to watch; platform/ does the watching.
 */
import { GUARDED_FILES } from '../../../detect/index.js';
import { DetectAuditStream, watchFileId, type DetectAuditActivity } from '../../platform/index.js';
import type { SensorScope } from '../sensor.js';

export type KernelSignal =
  | { readonly kind: 'memory'; readonly timeMs: number; readonly pid: number; readonly ppid: number; readonly exe: string | null; readonly argv: readonly string[]; readonly method: 'proc-mem' | 'ptrace-attach' | 'ptrace-seize' | 'process_vm_readv' | 'process_vm_writev'; readonly targetPid: number; readonly targetComm: string | null; readonly succeeded: boolean }
  | { readonly kind: 'guarded-file'; readonly timeMs: number; readonly pid: number; readonly ppid: number; readonly exe: string | null; readonly argv: readonly string[]; readonly path: string; readonly operation: string }
  | { readonly kind: 'agent-signal'; readonly timeMs: number; readonly pid: number; readonly ppid: number; readonly exe: string | null; readonly argv: readonly string[]; readonly signal: number; readonly succeeded: boolean };

/**
 * The files watched for changes: the guarded files as the job sees them. In
 * exec mode the job's /etc/resolv.conf is runwall's own file mounted over it,
 * reached through the job's root once the job runs (`/proc/PID/root/...`).
 */
export function guardedWatchPaths(): readonly string[] {
  return GUARDED_FILES;
}

export class KernelSignals {
  /** Watched files by id (watchFileId of the path runwall reaches), as the job knows them. */
  readonly #guarded = new Map<string, string>();

  private constructor(
    private readonly stream: DetectAuditStream,
    private readonly onSignal: (signal: KernelSignal) => void,
  ) {}

  static async open(scope: SensorScope, onSignal: (signal: KernelSignal) => void, onProblem: (message: string) => void): Promise<KernelSignals> {
    let signals: KernelSignals | null = null;
    const stream = await DetectAuditStream.open({ agentPid: scope.kind === 'agent' ? scope.agentPid : null }, (activity) => {
      if (signals) signals.#deliver(activity);
    }, onProblem);
    signals = new KernelSignals(stream, onSignal);
    for (const path of guardedWatchPaths()) await signals.watchFile(path, path);
    return signals;
  }

  /** Watches `path` (as runwall reaches it) and reports changes under the name `shownAs` (as the job knows it). */
  async watchFile(path: string, shownAs: string): Promise<void> {
    this.#guarded.set(watchFileId(path), shownAs);
    await this.stream.watchFile(path);
  }

  async watchMemory(pid: number, innerPid: number | null): Promise<void> {
    await this.stream.watchMemory(pid, innerPid);
  }

  async unwatchMemory(pid: number): Promise<void> {
    await this.stream.unwatchMemory(pid);
  }

  async close(): Promise<void> {
    await this.stream.close();
  }

  #deliver(activity: DetectAuditActivity): void {
    const actor = { timeMs: activity.timeMs, pid: activity.pid, ppid: activity.ppid, exe: activity.exe, argv: activity.argv };
    switch (activity.kind) {
      case 'memory':
        this.onSignal({ ...actor, kind: 'memory', method: activity.method, targetPid: activity.targetPid, targetComm: activity.targetComm, succeeded: activity.succeeded });
        return;
      case 'watch': {
        // Another runwall's watch of a file this one does not watch is not ours.
        const path = this.#guarded.get(activity.fileId);
        // A refused open changed nothing.
        if (path !== undefined && activity.succeeded) this.onSignal({ ...actor, kind: 'guarded-file', path, operation: activity.operation });
        return;
      }
      case 'agent-signal':
        this.onSignal({ ...actor, kind: 'agent-signal', signal: activity.signal, succeeded: activity.succeeded });
        return;
    }
  }
}
