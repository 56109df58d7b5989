/**
 * The job's namespaces held open for several steps (`runwall exec --workflow`).
 *
 * The sandbox's usual job (spawnJob) is a holder that only waits; each step
 * is then started by runwall itself, from outside, into the same network,
 * PID and mount namespaces and the same cgroup, with the same capabilities
 * dropped. So step boundaries are what runwall saw, not what the job says,
 * and a process a step leaves running (a server started in the background)
 * lives on into later steps, as on a CI runner, until the job ends.
 *
 * The host-side part of a step's chain (setpriv, sh, nsenter) runs as root
 * with all capabilities, so it gets absolute paths and a fixed environment:
 * the step's environment, which earlier steps can change through
 * $GITHUB_ENV and $GITHUB_PATH, is handed over only inside the sandbox.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RunwallError } from '../../protocol/index.js';
import { childPids, netnsPath } from '../platform/index.js';
import type { ExecSandbox } from './exec-sandbox.js';
import { capabilityArgument } from './sandbox-plan.js';

/** Directories host-side tools are taken from; never the step's PATH. */
const TOOL_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
const HOST_ENV = Object.freeze({ PATH: TOOL_DIRS.join(':'), LC_ALL: 'C' });
const READY_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 10;

/**
 * A step's own init inside the job's PID namespace: runs the step with the
 * capabilities dropped and stdin from /dev/null, forwards signals to it, and
 * exits with its status (128 + N when a signal ended it). The same shape as
 * the job's init (sandbox-plan.ts), so the process sensor sees a step's
 * command as the job's.
 */
export const STEP_INIT_SCRIPT = `
caps="$1"; shift
setpriv --bounding-set "$caps" --inh-caps "$caps" -- "$@" </dev/null &
child=$!
for s in TERM INT HUP QUIT USR1 USR2; do trap "kill -$s $child 2>/dev/null" $s; done
while :; do
  wait $child; status=$?
  kill -0 $child 2>/dev/null || break
done
exit $status
`;

function tool(name: string): string {
  for (const dir of TOOL_DIRS) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  throw new RunwallError('RW_PLATFORM_MISSING', `${name} is not installed in ${TOOL_DIRS.join(', ')}`);
}

function pidNamespace(pid: number | 'self'): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface StepSpawnOptions {
  /** The command inside the sandbox (`bash -e /tmp/…/step.sh`); looked up on `env.PATH` there. */
  readonly argv: readonly string[];
  /** Absolute, as the job sees it. */
  readonly cwd: string;
  /** The step's whole environment (nothing else is inherited). */
  readonly env: Readonly<Record<string, string>>;
  readonly droppedCapabilities: readonly string[];
}

export interface StartOptions {
  /** A directory the holder can write to (the job's temp directory): it says there when the namespaces are ready. */
  readonly readyDir: string;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly droppedCapabilities: readonly string[];
}

export class JobNamespace {
  /** The holder as runwall spawned it (setpriv → … → unshare): it exits when the namespaces end. */
  readonly holder: ChildProcess;
  /** Host pid of PID 1 of the job's PID namespace. */
  readonly initPid: number;
  readonly #sandbox: ExecSandbox;
  readonly #exited: Promise<void>;
  readonly #tools: { setpriv: string; sh: string; nsenter: string; env: string };

  private constructor(sandbox: ExecSandbox, holder: ChildProcess, initPid: number, exited: Promise<void>) {
    this.#sandbox = sandbox;
    this.holder = holder;
    this.initPid = initPid;
    this.#exited = exited;
    this.#tools = { setpriv: tool('setpriv'), sh: tool('sh'), nsenter: tool('nsenter'), env: tool('env') };
  }

  /** Starts the job's namespaces with a holder that only waits, and returns once steps can enter them. */
  static async start(sandbox: ExecSandbox, options: StartOptions): Promise<JobNamespace> {
    const ready = join(options.readyDir, '.runwall-namespace-ready');
    const holder = sandbox.spawnJob({
      command: 'sh',
      args: ['-c', ': > "$0" && exec sleep infinity', ready],
      cwd: options.cwd,
      env: options.env,
      droppedCapabilities: options.droppedCapabilities,
    });
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => {
      holder.once('exit', (code) => {
        exitCode = code;
        resolve();
      });
      holder.once('error', () => {
        exitCode = 250;
        resolve();
      });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const ours = pidNamespace('self');
    for (;;) {
      if (exitCode !== undefined) throw new RunwallError('RW_SETUP_FAILED', `the job's namespaces did not start (status ${exitCode})`);
      if (existsSync(ready) && holder.pid !== undefined) {
        // The holder's pid is unshare's; its child is PID 1 of the new PID namespace.
        const init = childPids(holder.pid).find((pid) => {
          const ns = pidNamespace(pid);
          return ns !== null && ns !== ours;
        });
        if (init !== undefined) return new JobNamespace(sandbox, holder, init, exited);
      }
      if (Date.now() > deadline) {
        holder.kill('SIGKILL');
        throw new RunwallError('RW_SETUP_FAILED', `the job's namespaces were not ready within ${READY_TIMEOUT_MS / 1000} s`);
      }
      await sleep(READY_POLL_MS);
    }
  }

  /**
   * Starts one step in the job's namespaces and cgroup. The returned process
   * is the step's host-side root (nsenter); it exits with the step's status.
   */
  spawnStep(options: StepSpawnOptions): ChildProcess {
    const cgroupDir = this.#sandbox.createCgroup();
    const t = this.#tools;
    const inside = [
      t.sh,
      '-c',
      STEP_INIT_SCRIPT,
      'runwall-step',
      capabilityArgument(options.droppedCapabilities),
      t.env,
      '-i',
      // A shell's background command starts with SIGINT and SIGQUIT ignored, which a script then cannot
      // even trap; a step gets them back, so cancelling it (SIGINT first, as the runner does) reaches it.
      '--default-signal=INT,QUIT',
      ...Object.entries(options.env).filter(([name]) => name !== '' && !name.includes('=')).map(([name, value]) => `${name}=${value}`),
      ...options.argv,
    ];
    const argv = [
      '--pdeathsig',
      'KILL',
      '--',
      t.sh,
      '-c',
      'echo $$ > "$0/cgroup.procs" && exec "$@"',
      cgroupDir,
      t.nsenter,
      `--target=${this.initPid}`,
      `--net=${netnsPath(this.#sandbox.plan.netns)}`,
      '--pid',
      '--mount',
      `--wd=${options.cwd}`,
      '--',
      ...inside,
    ];
    return spawn(t.setpriv, argv, { stdio: ['ignore', 'inherit', 'inherit'], env: HOST_ENV });
  }

  /** Host pid of a step's init inside the namespace (the child of its nsenter), once it exists. */
  stepInit(step: ChildProcess): number | null {
    return step.pid === undefined ? null : (childPids(step.pid)[0] ?? null);
  }

  /** Ends the job: PID 1 of the namespace goes, and with it every process a step left behind. */
  async stop(): Promise<void> {
    try {
      process.kill(this.initPid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await Promise.race([this.#exited, sleep(5_000)]);
    if (this.holder.exitCode === null && this.holder.signalCode === null) this.holder.kill('SIGKILL');
  }
}
