// cgroup v2 on this machine's real hierarchy, under a directory unique to this test process.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cgroup2Root,
  cgroupOfPid,
  cgroupPids,
  createCgroup,
  killCgroup,
  moveToCgroup,
  removeCgroup,
} from '../../../src/agent/platform/index.js';
import { killListedProcesses } from '../../../src/agent/platform/cgroup.js';

const base = `runwall-test-${process.pid}`;

function sleeper(): ChildProcess & { exited: Promise<NodeJS.Signals | null> } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  return Object.assign(child, { exited: new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal))) });
}

function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[0] ?? '?';
  } catch {
    return 'gone';
  }
}

function thrown(f: () => unknown): { code: unknown; message: string } {
  try {
    f();
  } catch (error) {
    return { code: (error as { code?: unknown }).code, message: (error as Error).message };
  }
  throw new Error('expected a throw');
}

describe('cgroup v2', () => {
  afterAll(() => killCgroup(base));

  it('finds the cgroup2 mount from /proc/self/mounts', () => {
    const root = cgroup2Root();
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
    expect(line?.split(' ')[1]).toBe(root);
    expect(existsSync(`${root}/cgroup.procs`)).toBe(true);
  });

  it('creates a cgroup with its parents and returns its absolute path', () => {
    const path = createCgroup(`${base}/create/a/b`);
    expect(path).toBe(`${cgroup2Root()}/${base}/create/a/b`);
    expect(existsSync(`${path}/cgroup.procs`)).toBe(true);
    expect(createCgroup(`${base}/create/a/b`)).toBe(path); // again: already there
    removeCgroup(`${base}/create`);
    expect(existsSync(`${cgroup2Root()}/${base}/create`)).toBe(false);
    removeCgroup(`${base}/create`); // idempotent
  });

  it('lists a moved process (recursively), names its cgroup, then kills everything and removes the directories', async () => {
    createCgroup(`${base}/job/inner`);
    const outer = sleeper();
    const inner = sleeper();
    await moveToCgroup(`${base}/job`, outer.pid!);
    await moveToCgroup(`${base}/job/inner`, inner.pid!);
    expect(cgroupOfPid(inner.pid!)).toBe(`${base}/job/inner`);
    expect(cgroupPids(`${base}/job`)).toEqual([outer.pid!, inner.pid!].sort((a, b) => a - b));
    expect(cgroupPids(`${base}/job/inner`)).toEqual([inner.pid!]);

    await killCgroup(`${base}/job`);
    expect(await outer.exited).toBe('SIGKILL');
    expect(await inner.exited).toBe('SIGKILL');
    expect(existsSync(`${cgroup2Root()}/${base}/job`)).toBe(false);
    expect(cgroupPids(`${base}/job`)).toEqual([]);
    await killCgroup(`${base}/job`); // already gone: nothing to do
  });

  it('kills processes forked inside the cgroup after the move', async () => {
    createCgroup(`${base}/forks`);
    const shell = spawn('sh', ['-c', 'read go; sleep 30 & sleep 30 & wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => shell.on('exit', (_c, signal) => resolve(signal)));
    await moveToCgroup(`${base}/forks`, shell.pid!);
    shell.stdin!.write('go\n');
    const deadline = Date.now() + 5000;
    while (cgroupPids(`${base}/forks`).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const pids = cgroupPids(`${base}/forks`);
    expect(pids).toHaveLength(3);

    await killCgroup(`${base}/forks`);
    expect(await exited).toBe('SIGKILL');
    // The orphaned sleeps are dead: gone, or zombies waiting for init to reap them.
    for (const pid of pids) expect(processState(pid)).toMatch(/^(gone|Z)$/);
  });

  it('without cgroup.kill (Linux < 5.14), kills the listed processes in rounds', async () => {
    createCgroup(`${base}/old-kernel/inner`);
    const outer = sleeper();
    const inner = sleeper();
    await moveToCgroup(`${base}/old-kernel`, outer.pid!);
    await moveToCgroup(`${base}/old-kernel/inner`, inner.pid!);
    await killListedProcesses(`${base}/old-kernel`);
    expect(await outer.exited).toBe('SIGKILL');
    expect(await inner.exited).toBe('SIGKILL');
    expect(cgroupPids(`${base}/old-kernel`)).toEqual([]);
    removeCgroup(`${base}/old-kernel`);
  });

  it('will not remove a cgroup that still has processes, and says which', async () => {
    createCgroup(`${base}/busy`);
    const child = sleeper();
    await moveToCgroup(`${base}/busy`, child.pid!);
    const failure = thrown(() => removeCgroup(`${base}/busy`));
    expect(failure.code).toBe('RW_TEARDOWN_FAILED');
    expect(failure.message).toContain(`processes left: ${child.pid}`);
    await killCgroup(`${base}/busy`);
  });

  it('rejects paths that are not plain relative cgroup paths, and unknown pids', () => {
    for (const bad of ['', '/abs', '../up', `${base}/../x`, `${base}//x`, `${base}/./x`]) {
      expect(thrown(() => createCgroup(bad)).code).toBe('RW_SETUP_FAILED');
    }
    expect(thrown(() => moveToCgroup(base, 0)).code).toBe('RW_SETUP_FAILED');
    expect(cgroupOfPid(2 ** 22 + 1)).toBeNull(); // above pid_max's ceiling
  });
});
