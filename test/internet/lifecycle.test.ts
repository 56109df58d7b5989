// Creating, sharing and tearing down test internets: nothing may leak into the machine.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupStaleInternets, createInternet, type Internet } from '../helpers/internet.js';

const created: Internet[] = [];

afterEach(async () => {
  await Promise.all(created.splice(0).map((internet) => internet.destroy()));
});

async function track(internet: Promise<Internet>): Promise<Internet> {
  const value = await internet;
  created.push(value);
  return value;
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

function pidsIn(ns: string): number[] {
  return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number);
}

/** Gone, or a zombie waiting for a parent that is not ours to reap it. */
function isDead(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  return condition();
}

describe('destroy', () => {
  it('leaves no namespace and no process behind, even ones that escaped their process group', async () => {
    const internet = await track(createInternet({ name: 'life' }));
    expect(internet.prefix).toMatch(new RegExp(`^rwt${process.pid}n\\d+-life$`));
    const container = await internet.addContainer();
    const running = internet.spawnInHost(['sleep', '60']);
    const escaped = await internet.runInHost(['sh', '-c', 'setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $!']);
    await container.run(['sh', '-c', 'setsid sleep 60 </dev/null >/dev/null 2>&1 &']);
    const ours = [internet.hostNs, internet.inetNs, container.ns];
    const pids = ours.flatMap(pidsIn);
    expect(pids).toContain(Number(escaped.stdout.trim()));
    expect(pids.length).toBeGreaterThanOrEqual(4); // server, sleep, escaped sleep, container's sleep

    await internet.destroy();
    expect(namespaces().filter((ns) => ns.startsWith(`${internet.prefix}-`))).toEqual([]);
    for (const ns of ours) expect(existsSync(`/run/netns/${ns}`)).toBe(false);
    expect(await waitUntil(() => pids.every(isDead), 3_000)).toBe(true);
    expect((await running.done).signal).toBe('SIGKILL');

    await internet.destroy(); // idempotent
    await expect(internet.hits()).rejects.toThrow(/destroyed/);
    expect(() => internet.spawnInHost(['true'])).toThrow(/destroyed/);
  });

  it('rejects requests at once when the server process dies, and still tears down', async () => {
    const internet = await track(createInternet());
    const [serverPid] = pidsIn(internet.inetNs);
    expect(serverPid).toBeGreaterThan(0);
    process.kill(serverPid!, 'SIGKILL');
    const started = Date.now();
    await expect(waitUntil(() => isDead(serverPid!), 3_000)).resolves.toBe(true);
    await expect(internet.hits()).rejects.toThrow(/exited/);
    expect(Date.now() - started).toBeLessThan(4_000);
    await internet.destroy();
    expect(existsSync(`/run/netns/${internet.inetNs}`)).toBe(false);
  });
});

describe('several internets', () => {
  it('run at once without seeing each other', async () => {
    const [a, b] = await Promise.all([track(createInternet()), track(createInternet())]);
    expect(a!.prefix).not.toBe(b!.prefix);
    await a!.dns.set('only-a.test', [{ type: 'A', data: '198.51.100.88' }]);
    const digA = await a!.runInHost(['dig', '+short', '+tries=1', '+time=3', '@198.51.100.53', 'only-a.test']);
    const digB = await b!.runInHost(['dig', '+short', '+tries=1', '+time=3', '@198.51.100.53', 'only-a.test']);
    expect(digA.stdout.trim()).toBe('198.51.100.88');
    expect(digB.stdout.trim()).toBe('');
    await Promise.all([a!.clearHits(), b!.clearHits()]);
    const curl = await a!.runInHost(['curl', '-sS', '-m', '5', 'http://198.51.100.10/']);
    expect(curl.stdout).toBe('ok 198.51.100.10 80 198.51.100.10');
    expect(await a!.hits()).toHaveLength(1);
    expect(await b!.hits()).toEqual([]);
    expect((await b!.dns.queries()).map((q) => q.name)).toEqual(['only-a.test']);
  });

  it('refuse a name that is not a short lower-case label', async () => {
    await expect(createInternet({ name: 'Bad Name' })).rejects.toThrow(/internet name/);
  });
});

describe('cleanupStaleInternets', () => {
  it('removes the namespaces of dead test processes and keeps those of live ones', () => {
    const deadPid = spawnSync('true').pid;
    const live = spawn('sleep', ['30'], { stdio: 'ignore' });
    const stale = `rwt${deadPid}n0-host`;
    const kept = `rwt${live.pid}n0-inet`;
    try {
      execFileSync('ip', ['netns', 'add', stale]);
      execFileSync('ip', ['netns', 'add', kept]);
      cleanupStaleInternets();
      expect(namespaces()).not.toContain(stale);
      expect(namespaces()).toContain(kept);
    } finally {
      live.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', stale]);
      spawnSync('ip', ['netns', 'del', kept]);
    }
  });
});
