/**
 * Which processes are the job. Pure rules over the table's records; the one
 * piece of I/O they need (a process's cgroup) is passed in.
 *
 * exec scope (`runwall exec`): the sandbox is started by runwall as
 *   launcher       runwall's child that enters the job's cgroup (sh → nsenter → unshare)
 *   sandbox-init   its child, PID 1 of the job's PID namespace (JOB_INIT_SCRIPT)
 *   sandbox-helper init's children: `mount` (the resolver file), then
 *                  `setpriv` (drops capabilities) which execs the command
 *   job            the command from its exec after setpriv, and all it starts
 * so the job's tree starts at the user's command (`sh → curl`, not
 * `unshare → sh → setpriv → sh → curl`). See sandbox/exec-sandbox.ts spawnJob().
 *
 * agent scope (`runwall agent`): the whole machine is watched. On a CI runner
 * the job is what the runner worker (`Runner.Worker`) starts, and processes in
 * containers; with no runner on the machine, everything but the agent itself.
 */
import type { ProcessRecord, ProcessRole } from './process-table.js';
import { baseName, containerIdOf } from './tool-name.js';

export interface Membership {
  /** The role of a new process, from its creator's (null: not known). */
  forked(child: ProcessRecord, parent: ProcessRecord | null): ProcessRole;
  /** The role when the kernel announces an exec, before its details (exe, argv) are known. */
  announced(record: ProcessRecord): ProcessRole;
  /** The role after an exec (exe, argv and cgroup already updated). */
  execed(record: ProcessRecord): ProcessRole;
}

function programName(record: ProcessRecord): string {
  return record.exe ? baseName(record.exe) : (record.comm ?? '');
}

export interface ExecScopeOptions {
  /** The job's cgroup, relative to the cgroup2 root (`runwall/1a2b3c4d`). */
  readonly jobCgroup: string;
  /** The process that spawns the launcher: runwall itself. */
  readonly launcherParent: number;
  /** The cgroup v2 path of a live process (`/runwall/1a2b3c4d`), null when it is gone. */
  readonly cgroupOf: (pid: number) => string | null;
}

export function execMembership(options: ExecScopeOptions): Membership {
  const job = `/${options.jobCgroup.replace(/^\/+|\/+$/g, '')}`;
  const inJobCgroup = (path: string | null): boolean => path !== null && (path === job || path.startsWith(`${job}/`));
  return {
    forked(_child, parent) {
      switch (parent?.role) {
        case 'launcher':
          return 'sandbox-init';
        case 'sandbox-init':
        case 'sandbox-helper':
          return 'sandbox-helper';
        case 'job':
          return 'job';
        default:
          return 'outside';
      }
    },
    // The launcher is known at its first exec announcement (it has just moved into the cgroup),
    // before it forks the sandbox's init: that fork must already see it as the launcher.
    announced(record) {
      if (record.role === 'outside' && record.ppid === options.launcherParent) {
        const cgroup = options.cgroupOf(record.pid);
        if (inJobCgroup(cgroup)) {
          record.cgroup = cgroup;
          return 'launcher';
        }
      }
      return record.role;
    },
    execed(record) {
      if (record.role === 'outside') return this.announced(record);
      if (record.role === 'sandbox-helper') {
        const name = programName(record);
        if (name === 'setpriv') {
          record.sawSetpriv = true;
          return 'sandbox-helper';
        }
        // The resolver mount runs before the command's setpriv; anything else is the command
        // (also when a missed exec record hid the setpriv step).
        if (name === 'mount' && !record.sawSetpriv) return 'sandbox-helper';
        return 'job';
      }
      return record.role;
    },
  };
}

export const RUNNER_WORKER = 'Runner.Worker';
const RUNNER_PROCESSES = new Set(['Runner.Listener', 'Runner.PluginHost', 'RunnerService.js']);

export interface AgentScopeOptions {
  readonly agentPid: number;
  /** True while a runner process (worker or listener) is alive on the machine. */
  readonly runnerPresent: () => boolean;
}

export function agentMembership(options: AgentScopeOptions): Membership {
  return {
    forked(child, parent) {
      if (child.pid === options.agentPid || parent?.role === 'agent') return 'agent';
      if (parent?.role === 'runner-worker' || parent?.role === 'job') return 'job';
      return options.runnerPresent() ? 'outside' : 'job';
    },
    announced(record) {
      return record.role;
    },
    execed(record) {
      if (record.role === 'agent') return 'agent';
      const name = programName(record);
      if (name === RUNNER_WORKER || record.comm === RUNNER_WORKER) return 'runner-worker';
      if (RUNNER_PROCESSES.has(name)) return 'runner';
      if (record.role === 'outside' && record.cgroup !== null && containerIdOf(record.cgroup) !== null) return 'job';
      return record.role;
    },
  };
}
