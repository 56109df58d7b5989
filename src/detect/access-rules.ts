/**
 * Rules on what the kernel reported a process doing to another process or to a
 * guarded file: reading its memory, signalling the agent, writing the resolver
 * configuration. The caller gathers the facts (audit records, /proc); these
 * functions only judge them. Pure.
 */
import type { AncestorFacts, Finding, ProcessFacts } from './detection.js';
import { describeProcess, isRunnerProcess } from './programs.js';

export type MemoryAccessMethod = 'proc-mem' | 'ptrace-attach' | 'ptrace-seize' | 'process_vm_readv' | 'process_vm_writev';

export interface MemoryAccess {
  readonly accessor: ProcessFacts;
  /** What is known of the target: at least its pid. */
  readonly target: AncestorFacts;
  /** The target's parent, when known: a tracer that started its target (`strace ./build`) is debugging, not attacking. */
  readonly targetParent?: number | null;
  readonly method: MemoryAccessMethod;
  /** The kernel allowed it (false: refused, still an attempt). */
  readonly succeeded: boolean;
  /** The target is the runwall agent itself. */
  readonly targetIsAgent?: boolean;
}

const METHOD_TEXT: Readonly<Record<MemoryAccessMethod, string>> = {
  'proc-mem': 'opened /proc/PID/mem',
  'ptrace-attach': 'attached with ptrace',
  'ptrace-seize': 'attached with ptrace (seize)',
  process_vm_readv: 'called process_vm_readv',
  process_vm_writev: 'called process_vm_writev',
};

export function detectMemoryAccess(access: MemoryAccess, time: string): Finding[] {
  // Reading one's own memory is not reading another process's.
  if (access.target.pid === access.accessor.pid) return [];
  // A debugger started on its own child is a debugging session, not an attack on a running process.
  if (access.method !== 'proc-mem' && access.targetParent === access.accessor.pid) return [];
  const runner = isRunnerProcess(access.target);
  const agent = access.targetIsAgent === true;
  const target = describeProcess(access.target);
  return [
    {
      id: 'process-memory-read',
      time,
      process: access.accessor,
      severity: runner || agent ? 'critical' : 'high',
      title: runner
        ? `A process read the runner worker's memory (${target}), where the job's secrets are`
        : agent
          ? `A process read the runwall agent's memory (${target})`
          : `A process read another process's memory (${target})`,
      evidence: {
        method: access.method,
        how: METHOD_TEXT[access.method],
        succeeded: access.succeeded,
        reader: { pid: access.accessor.pid, exe: access.accessor.exe, argv: [...access.accessor.argv] },
        target: { pid: access.target.pid, exe: access.target.exe, ...(access.target.argv ? { argv: [...access.target.argv] } : {}) },
        runnerWorker: runner,
      },
    },
  ];
}


/** Files whose change redirects or blinds the runner's egress guard. Exact paths and directory prefixes. */
export const GUARDED_FILES: readonly string[] = [
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/gai.conf',
  '/etc/systemd/resolved.conf',
  '/etc/docker/daemon.json',
];
export const GUARDED_DIRECTORIES: readonly string[] = ['/etc/systemd/resolved.conf.d/', '/run/systemd/resolve/', '/etc/docker/', '/etc/nftables.d/'];

export function isGuardedPath(path: string): boolean {
  return GUARDED_FILES.includes(path) || GUARDED_DIRECTORIES.some((dir) => path.startsWith(dir));
}

export interface GuardedFileChange {
  readonly process: ProcessFacts;
  readonly path: string;
  /** create, write, rename, delete, attribute change: what the kernel reported. */
  readonly operation: string;
}

export function detectGuardedFileChange(change: GuardedFileChange, time: string): Finding[] {
  if (!isGuardedPath(change.path)) return [];
  const resolver = /resolv|nsswitch|gai\.conf|hosts$/.test(change.path);
  return [
    {
      id: 'guard-tamper',
      time,
      process: change.process,
      severity: 'high',
      title: resolver ? `The job changed how names resolve (${change.path})` : `The job changed the container engine's configuration (${change.path})`,
      evidence: { what: 'guarded-file', path: change.path, operation: change.operation },
    },
  ];
}

export interface AgentSignal {
  readonly sender: ProcessFacts;
  readonly agentPid: number;
  readonly signal: number;
  readonly succeeded: boolean;
}

export function detectAgentSignal(signal: AgentSignal, time: string): Finding[] {
  // Signal 0 only probes whether the agent is alive.
  if (signal.sender.pid === signal.agentPid) return [];
  return [
    {
      id: 'guard-tamper',
      time,
      process: signal.sender,
      severity: signal.signal === 0 ? 'medium' : 'critical',
      title: signal.signal === 0 ? 'The job probed whether the runwall agent is running' : 'The job sent a signal to the runwall agent',
      evidence: { what: 'agent-signal', agentPid: signal.agentPid, signal: signal.signal, succeeded: signal.succeeded },
    },
  ];
}
