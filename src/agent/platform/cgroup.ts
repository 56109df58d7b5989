/**
 * cgroup v2: a job's processes live in one cgroup, so they can be listed,
 * exempted or matched by nftables (`socket cgroupv2`) and killed together.
 *
 * Paths given to these functions are relative to the cgroup2 mount, found in
 * /proc/self/mounts: on a hybrid host it is /sys/fs/cgroup/unified, not
 * /sys/fs/cgroup.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { RunwallError } from '../../protocol/index.js';

/** A relative cgroup path: segments of safe characters, no `.` or `..`. */
const RELATIVE_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]*(\/[A-Za-z0-9_][A-Za-z0-9_.:@-]*)*$/;
const KILL_ROUNDS_MAX = 50;
const REMOVE_WAIT_MS = 2000;
const POLL_MS = 20;

/** The cgroup2 mount point. RW_PLATFORM_MISSING if none is mounted. */
export function cgroup2Root(): string {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  for (const line of mounts.split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    if (fsType === 'cgroup2' && mountPoint !== undefined) return unescapeMountField(mountPoint);
  }
  throw new RunwallError('RW_PLATFORM_MISSING', 'no cgroup2 file system is mounted (see /proc/self/mounts)');
}

/** Creates the cgroup and its parents; returns its absolute path. */
export function createCgroup(relPath: string): string {
  const path = absolute(relPath);
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    throw new RunwallError('RW_SETUP_FAILED', `cannot create cgroup ${path}: ${(error as Error).message}`, { path }, { cause: error });
  }
  return path;
}

/**
 * Settles when the kernel has moved `pid` (all its threads). Asynchronous because the move
 * waits for an RCU grace period (10-20 ms here), which the caller can spend on other set-up.
 * A bad path or pid throws at once.
 */
export function moveToCgroup(relPath: string, pid: number): Promise<void> {
  const path = absolute(relPath);
  const line = `${checkedPid(pid)}\n`;
  return writeFile(`${path}/cgroup.procs`, line).catch((error: unknown) => {
    throw new RunwallError('RW_SETUP_FAILED', `cannot move pid ${pid} into cgroup ${path}: ${(error as Error).message}`, { path, pid }, { cause: error });
  });
}

/** Every process in the cgroup and its descendants; [] if it does not exist. */
export function cgroupPids(relPath: string): number[] {
  const pids = new Set<number>();
  for (const dir of subtree(absolute(relPath))) {
    for (const pid of readPids(`${dir}/cgroup.procs`)) pids.add(pid);
  }
  return [...pids].sort((a, b) => a - b);
}

/**
 * Kills every process in the cgroup and its descendants, then removes them.
 * Uses cgroup.kill (Linux 5.14+), which also catches processes forking while
 * it runs; otherwise SIGKILLs the listed processes in bounded rounds.
 * RW_TEARDOWN_FAILED if the cgroup is still there after ~2 s.
 */
export async function killCgroup(relPath: string): Promise<void> {
  const path = absolute(relPath);
  if (!existsSync(path)) return;
  if (existsSync(`${path}/cgroup.kill`)) {
    try {
      writeFileSync(`${path}/cgroup.kill`, '1\n');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new RunwallError('RW_TEARDOWN_FAILED', `cannot kill cgroup ${path}: ${(error as Error).message}`, { path }, { cause: error });
      }
    }
  } else {
    await killListedProcesses(relPath);
  }
  await removeWithin(relPath, REMOVE_WAIT_MS);
}

/**
 * Before cgroup.kill (Linux < 5.14): SIGKILL every listed process, in bounded
 * rounds, until none is left; a process forking meanwhile is caught next round.
 * Exported for its test; use killCgroup.
 */
export async function killListedProcesses(relPath: string): Promise<void> {
  for (let round = 0; round < KILL_ROUNDS_MAX; round++) {
    const pids = cgroupPids(relPath);
    if (pids.length === 0) return;
    for (const pid of pids) signalQuietly(pid);
    await sleep(POLL_MS);
  }
}

/** Removes the cgroup and its (empty) descendants; nothing happens if it does not exist. RW_TEARDOWN_FAILED while processes remain. */
export function removeCgroup(relPath: string): void {
  const path = absolute(relPath);
  for (const dir of subtree(path).reverse()) {
    try {
      rmdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      const left = cgroupPids(relPath);
      throw new RunwallError(
        'RW_TEARDOWN_FAILED',
        `cannot remove cgroup ${dir}: ${code ?? (error as Error).message}${left.length > 0 ? ` (processes left: ${left.join(', ')})` : ''}`,
        { path: dir, pids: left },
        { cause: error },
      );
    }
  }
}

/** The process's cgroup v2 path relative to cgroup2Root ('' for the root); null if it has exited. */
export function cgroupOfPid(pid: number): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${checkedPid(pid)}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return null;
  return line.slice(3).replace(/^\/+/, '').replace(/ \(deleted\)$/, '');
}

async function removeWithin(relPath: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      removeCgroup(relPath);
      return;
    } catch (error) {
      // Killed processes leave the cgroup only once they have finished exiting.
      if (Date.now() >= deadline) throw error;
    }
    await sleep(POLL_MS);
  }
}

function absolute(relPath: string): string {
  if (!RELATIVE_PATH.test(relPath)) {
    throw new RunwallError('RW_SETUP_FAILED', `'${relPath}' is not a relative cgroup path (segments of letters, digits, _ . : @ -)`);
  }
  return `${cgroup2Root()}/${relPath}`;
}

/** The directory and every cgroup below it, parents before children; [] if it does not exist. */
function subtree(path: string): string[] {
  const out: string[] = [];
  const pending = [path];
  // A cgroup tree is finite and acyclic (no links in cgroupfs): this ends.
  while (pending.length > 0) {
    const dir = pending.shift() as string;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new RunwallError('RW_SETUP_FAILED', `cannot read cgroup ${dir}: ${(error as Error).message}`, { path: dir }, { cause: error });
    }
    out.push(dir);
    for (const entry of entries) if (entry.isDirectory()) pending.push(`${dir}/${entry.name}`);
  }
  return out;
}

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RunwallError('RW_SETUP_FAILED', `cannot read ${file}: ${(error as Error).message}`, { path: file }, { cause: error });
  }
}

function signalQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // It exited between listing and signalling: that is the goal.
  }
}

function checkedPid(pid: number): number {
  if (!Number.isInteger(pid) || pid <= 0) throw new RunwallError('RW_SETUP_FAILED', `${pid} is not a process id`);
  return pid;
}

/** /proc/self/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
