/**
 * The network namespace, veth pair, cgroup and resolver file of one
 * `runwall exec` run, and the state file that lets a later run remove them
 * when this one was killed. Enforcement itself lives in the host namespace
 * (see ../enforce), so nothing the job does inside its namespace changes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunwallError } from '../../protocol/index.js';
import { removeL7Rules } from '../l7/l7-inspector.js';
import {
  acceptForwardFor,
  createCgroup,
  deleteNetns,
  forwardPolicyDrops,
  ip,
  ipBatch,
  killCgroup,
  netnsExists,
  netnsPath,
  removeCgroup,
  sysctl,
  type Nftables,
} from '../platform/index.js';
import { JOB_INIT_SCRIPT, MAX_SLOTS, capabilityArgument, sandboxPlan, type SandboxPlan } from './sandbox-plan.js';

export const STATE_DIR = process.env['RUNWALL_STATE_DIR'] ?? '/run/runwall';
const RUNS_DIR = join(STATE_DIR, 'exec');
const SLOTS_DIR = join(STATE_DIR, 'slots');

interface SandboxState {
  readonly runId: string;
  readonly slot: number;
  readonly pid: number;
  /** Start time of `pid` (clock ticks since boot), so a recycled pid is not mistaken for us. */
  readonly pidStart: string;
  /** Inode of the network namespace runwall ran in: its table and host-side veth live there. */
  readonly hostNetns: number;
  readonly createdAt: string;
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name in field 2 may hold spaces, so count from its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function alive(state: SandboxState): boolean {
  return processStart(state.pid) === state.pidStart;
}

export function currentNetnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

function readState(runId: string): SandboxState | null {
  try {
    return JSON.parse(readFileSync(join(RUNS_DIR, `${runId}.json`), 'utf8')) as SandboxState;
  } catch {
    return null;
  }
}

function newRunId(): string {
  return Array.from({ length: 8 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
}

/** Takes the lowest free slot: an atomic mkdir, so two runs at once never share one. */
function claimSlot(runId: string): number {
  mkdirSync(SLOTS_DIR, { recursive: true, mode: 0o700 });
  for (let slot = 0; slot < MAX_SLOTS; slot += 1) {
    const dir = join(SLOTS_DIR, String(slot));
    try {
      mkdirSync(dir);
    } catch {
      continue;
    }
    writeFileSync(join(dir, 'owner'), runId);
    return slot;
  }
  throw new RunwallError('RW_SETUP_FAILED', `all ${MAX_SLOTS} sandbox slots are in use (${SLOTS_DIR})`);
}

function releaseSlot(slot: number): void {
  rmSync(join(SLOTS_DIR, String(slot)), { recursive: true, force: true });
}

export interface CleanupRecord {
  readonly runId: string;
  readonly removed: readonly string[];
}

/**
 * Removes what runs that died (SIGKILL, power loss of the process) left behind.
 * Their job namespace and cgroup can be removed from anywhere; their table and
 * host-side veth only from the namespace they ran in, so a state file stays
 * until a run in that namespace comes by (or a day has passed).
 */
export async function cleanupStaleSandboxes(nft: Nftables): Promise<CleanupRecord[]> {
  const records: CleanupRecord[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(RUNS_DIR).filter((name) => name.endsWith('.json'));
  } catch {
    return records;
  }
  const here = currentNetnsInode();
  for (const file of files) {
    const state = readState(file.slice(0, -5));
    if (!state || alive(state)) continue;
    const plan = sandboxPlan(state.runId, state.slot);
    const removed: string[] = [];
    await killCgroup(plan.cgroup).catch(() => undefined);
    removeCgroup(plan.cgroup);
    if (netnsExists(plan.netns)) {
      deleteNetns(plan.netns);
      removed.push(`netns ${plan.netns}`);
    }
    const old = Date.now() - Date.parse(state.createdAt) > 86_400_000;
    if (state.hostNetns === here) {
      try {
        nft.run(`delete table inet ${plan.table}`);
        removed.push(`nft table inet ${plan.table}`);
      } catch {
        // Already gone.
      }
      try {
        ip(['link', 'del', plan.hostInterface]);
        removed.push(`link ${plan.hostInterface}`);
      } catch {
        // Went with the namespace.
      }
      await removeL7Rules({ kind: 'exec', runId: plan.runId, jobInterface: plan.hostInterface });
    }
    if (state.hostNetns === here || old) {
      rmSync(join(RUNS_DIR, file), { force: true });
      rmSync(join(STATE_DIR, 'jobs', state.runId), { recursive: true, force: true });
      releaseSlot(state.slot);
    }
    records.push({ runId: state.runId, removed });
  }
  return records;
}

export interface JobSpawnOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly droppedCapabilities: readonly string[];
}

export class ExecSandbox {
  readonly plan: SandboxPlan;
  readonly resolvConf: string;
  #torndown = false;
  #cgroupDir: string | null = null;
  readonly #undo: Array<{ what: string; run: () => void | Promise<void> }> = [];

  private constructor(plan: SandboxPlan, resolvConf: string) {
    this.plan = plan;
    this.resolvConf = resolvConf;
  }

  /** Claims a slot and records the state file; nothing is created in the kernel yet. */
  static reserve(): ExecSandbox {
    mkdirSync(RUNS_DIR, { recursive: true, mode: 0o700 });
    const runId = newRunId();
    const slot = claimSlot(runId);
    const plan = sandboxPlan(runId, slot);
    const pidStart = processStart(process.pid) ?? '0';
    const state: SandboxState = {
      runId,
      slot,
      pid: process.pid,
      pidStart,
      hostNetns: currentNetnsInode(),
      createdAt: new Date().toISOString(),
    };
    writeFileSync(join(RUNS_DIR, `${runId}.json`), JSON.stringify(state), { mode: 0o600 });
    const jobDir = join(STATE_DIR, 'jobs', runId);
    mkdirSync(jobDir, { recursive: true, mode: 0o755 });
    const sandbox = new ExecSandbox(plan, join(jobDir, 'resolv.conf'));
    sandbox.#undo.push({
      what: 'state',
      run: () => {
        rmSync(jobDir, { recursive: true, force: true });
        rmSync(join(RUNS_DIR, `${runId}.json`), { force: true });
        releaseSlot(slot);
      },
    });
    return sandbox;
  }

  /** Registers a step to undo at teardown (most recent first). */
  onTeardown(what: string, run: () => void | Promise<void>): void {
    this.#undo.push({ what, run });
  }

  /**
   * Creates the namespace, the veth pair and the job's resolver file. Call only
   * once the table that guards the host-side interface is in place: the job's
   * link comes up already governed. Three ip processes (host, then job side),
   * not one per command.
   */
  async createNetwork(): Promise<void> {
    const p = this.plan;
    writeFileSync(this.resolvConf, `# written by runwall: the job's only resolver\nnameserver ${p.host4}\nnameserver ${p.host6}\noptions edns0\n`, {
      mode: 0o644,
    });
    // Asked while the links are made; both answers are needed only at the end.
    const forwardDrops = Promise.all(([4, 6] as const).map(async (family) => ({ family, drops: await forwardPolicyDrops(family) })));
    // Registered first: a batch that fails half-way leaves whatever it made, and this tolerates what is not there.
    this.onTeardown(`netns ${p.netns}`, async () => {
      // The link first (it takes its peer along at once; a namespace's own links go later), then the namespace; one ip process.
      await ipBatch(
        [
          ['link', 'del', p.hostInterface],
          ['netns', 'delete', p.netns],
        ],
        { force: true },
      ).catch(() => undefined);
      // What matters is that the namespace is gone (a failure to delete the link it took along is none).
      if (netnsExists(p.netns)) deleteNetns(p.netns);
    });
    try {
      await ipBatch([
        ['netns', 'add', p.netns],
        ['link', 'add', p.hostInterface, 'type', 'veth', 'peer', 'name', p.jobInterface, 'netns', p.netns],
      ]);
      // accept_ra stays as it was on other interfaces; forwarding is needed for the job's traffic.
      sysctl('net.ipv4.ip_forward', '1');
      sysctl('net.ipv6.conf.all.forwarding', '1');
      sysctl(`net.ipv6.conf.${p.hostInterface}.accept_dad`, '0');
      await ipBatch([
        ['addr', 'add', `${p.host4}/30`, 'dev', p.hostInterface],
        ['addr', 'add', `${p.host6}/64`, 'dev', p.hostInterface, 'nodad'],
        ['link', 'set', p.hostInterface, 'up'],
      ]);
      await ipBatch(
        [
          ['link', 'set', 'lo', 'up'],
          ['addr', 'add', `${p.job4}/30`, 'dev', p.jobInterface],
          ['addr', 'add', `${p.job6}/64`, 'dev', p.jobInterface, 'nodad'],
          ['link', 'set', p.jobInterface, 'up'],
          ['route', 'add', 'default', 'via', p.host4],
          ['route', 'add', 'default', 'via', p.host6],
        ],
        { netns: p.netns },
      );
    } catch (error) {
      // Let every iptables process finish before the failure goes up.
      await forwardDrops;
      throw error;
    }
    const drops = await forwardDrops;
    for (const { family, drops: policyDrops } of drops) {
      if (!policyDrops) continue;
      const undo = acceptForwardFor(family, p.hostInterface);
      this.onTeardown(`iptables FORWARD accept for ${p.hostInterface} (IPv${family})`, undo);
    }
  }

  /**
   * Starts the job: in its cgroup (before it can fork), the job's network
   * namespace, new PID and mount namespaces with a private /proc, the resolver
   * file mounted over /etc/resolv.conf, capabilities dropped. If runwall dies,
   * the parent-death signal takes the whole PID namespace with it.
   */
  /** The job's cgroup, made before the job starts so sensors can watch it from its first exec. */
  createCgroup(): string {
    const p = this.plan;
    if (this.#cgroupDir) return this.#cgroupDir;
    this.#cgroupDir = createCgroup(p.cgroup);
    this.onTeardown(`cgroup ${p.cgroup}`, async () => {
      await killCgroup(p.cgroup);
      removeCgroup(p.cgroup);
    });
    return this.#cgroupDir;
  }

  spawnJob(options: JobSpawnOptions): ChildProcess {
    const p = this.plan;
    const cgroupDir = this.createCgroup();
    const enter = [
      'nsenter',
      `--net=${netnsPath(p.netns)}`,
      '--',
      'unshare',
      '--pid',
      '--fork',
      '--kill-child',
      '--mount',
      '--mount-proc',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      JOB_INIT_SCRIPT,
      'runwall-init',
      this.resolvConf,
      capabilityArgument(options.droppedCapabilities),
      options.command,
      ...options.args,
    ];
    const argv = [
      '--pdeathsig',
      'KILL',
      '--',
      'sh',
      '-c',
      'echo $$ > "$0/cgroup.procs" && exec "$@"',
      cgroupDir,
      ...enter,
    ];
    return spawn('setpriv', argv, { stdio: 'inherit', cwd: options.cwd, env: options.env ?? process.env });
  }

  /** Undoes everything in reverse order; every step is attempted, failures are returned, never thrown. */
  async teardown(): Promise<string[]> {
    if (this.#torndown) return [];
    this.#torndown = true;
    const failures: string[] = [];
    for (const step of this.#undo.reverse()) {
      try {
        await step.run();
      } catch (error: unknown) {
        failures.push(`${step.what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures;
  }
}
