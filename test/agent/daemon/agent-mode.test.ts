// `runwall agent` protecting a whole "runner VM" (the test internet's host namespace): local processes
// and a container behind a bridge are under one policy; a killed agent leaves the machine blocked.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Container, type Internet } from '../../helpers/internet.js';
import { statuses } from '../../helpers/job-checks.js';
import { REPO, RUNWALL, eventsOf } from '../../helpers/runwall-cli.js';

interface AgentFixture {
  readonly dir: string;
  readonly resolvConf: string;
  readonly original: string;
  readonly flags: string[];
}

function fixture(): AgentFixture {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-agent-'));
  const resolvConf = join(dir, 'resolv.conf');
  const original = 'nameserver 198.51.100.53\nsearch example.internal\n';
  writeFileSync(resolvConf, original);
  mkdirSync(join(dir, 'docker'));
  return {
    dir,
    resolvConf,
    original,
    flags: ['--state-dir', join(dir, 'state'), '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'docker', 'daemon.json')],
  };
}

/** A shell on the "runner" whose /etc/resolv.conf is the file the agent manages. */
function onRunner(internet: Internet, f: AgentFixture, script: string) {
  return internet.runInHost(['unshare', '--mount', 'sh', '-c', `mount --bind ${f.resolvConf} /etc/resolv.conf && ${script}`], { timeoutMs: 30_000 });
}

/** A shell in the container, resolving through the agent on the bridge as Docker's daemon `dns` would make it. */
function inContainer(container: Container, f: AgentFixture, script: string) {
  const resolv = join(f.dir, 'container-resolv.conf');
  writeFileSync(resolv, 'nameserver 203.0.113.129\n');
  return container.run(['unshare', '--mount', 'sh', '-c', `mount --bind ${resolv} /etc/resolv.conf && ${script}`], { timeoutMs: 30_000 });
}

const CHECK = `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }`;

describe('runwall agent', () => {
  let internet: Internet;
  let container: Container;
  beforeAll(async () => {
    internet = await createInternet();
    container = await internet.addContainer('docker0');
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('enforces on the machine and on containers behind a bridge, and restores the resolver on stop', async () => {
    const f = fixture();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/enforcing block mode/);
    expect(readFileSync(f.resolvConf, 'utf8')).toMatch(/^nameserver 127\.0\.0\.153$/m);
    expect(JSON.parse(readFileSync(join(f.dir, 'docker', 'daemon.json'), 'utf8'))).toEqual({ dns: ['203.0.113.129'] });

    const local = await onRunner(
      internet,
      f,
      `${CHECK}
       check allowed curl -sf -m 3 http://allowed.test:443/
       check denied curl -sf -m 3 http://other.test:443/
       check direct curl -sf -m 3 http://198.51.100.11:443/
       check bypass dig +time=1 +tries=1 @203.0.113.53 allowed.test`,
    );
    expect(statuses(local)).toEqual({ allowed: 0, denied: 6, direct: 7, bypass: 9 });

    const boxed = await inContainer(
      container,
      f,
      `${CHECK}
       check allowed curl -sf -m 3 http://allowed.test:443/
       check denied curl -sf -m 3 http://other.test:443/
       check direct curl -sf -m 3 http://198.51.100.11:443/
       check bypass dig +time=1 +tries=1 @198.51.100.53 allowed.test`,
    );
    expect(statuses(boxed)).toEqual({ allowed: 0, denied: 6, direct: 7, bypass: 9 });

    const status = await internet.runInHost([...RUNWALL, 'agent', 'status', ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(JSON.parse(status.stdout)).toMatchObject({ mode: 'block', resolvers: ['127.0.0.153', '203.0.113.129'] });
    // The daemon starts with its memory settings (its RSS under load): V8's young generation (memory-flags.ts)
    // and glibc's malloc kept to two arenas (malloc-tuning.ts).
    const daemonPid = (JSON.parse(status.stdout) as { pid: number }).pid;
    expect(readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=2');
    const daemonEnv = readFileSync(`/proc/${daemonPid}/environ`, 'utf8').split('\0');
    expect(daemonEnv).toEqual(expect.arrayContaining(['MALLOC_ARENA_MAX=2', 'MALLOC_MMAP_THRESHOLD_=131072', 'MALLOC_TRIM_THRESHOLD_=131072']));

    const reportPath = join(f.dir, 'report.json');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(stop.code).toBe(0);
    expect(readFileSync(f.resolvConf, 'utf8')).toBe(f.original);
    expect((await internet.runInHost(['nft', 'list', 'tables'])).stdout).not.toContain('runwall_agent');
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    expect(report.run.surface).toBe('agent');
    const blocked = eventsOf(report, 'connection').filter((e) => e.verdict === 'blocked');
    expect(blocked.map((e) => `${e.source} ${e.destination}:${e.port}`)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^203\.0\.113\.130 198\.51\.100\.11:443$/), expect.stringMatching(/198\.51\.100\.11:443$/)]),
    );
    expect(eventsOf(report, 'dns').find((e) => e.name === 'other.test')?.verdict).toBe('blocked');
    expect((await internet.dns.queries()).map((q) => q.name)).not.toContain('other.test');
  }, 120_000);

  it('killed mid-run in block mode, it leaves the machine blocked until `agent stop` cleans up', async () => {
    const f = fixture();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    const status = JSON.parse((await internet.runInHost([...RUNWALL, 'agent', 'status', ...f.flags.slice(0, 2)], { cwd: REPO })).stdout) as { pid: number };
    process.kill(status.pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await onRunner(
      internet,
      f,
      `${CHECK}
       check name curl -sf -m 3 http://allowed.test:443/
       check direct curl -sf -m 3 http://198.51.100.11:443/
       check bypass dig +time=1 +tries=1 @198.51.100.53 allowed.test`,
    );
    expect(statuses(after)).toEqual({ name: 6, direct: 7, bypass: 9 });
    const dead = await internet.runInHost([...RUNWALL, 'agent', 'status', ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(dead.code).toBe(3);
    expect(dead.stdout).toContain('stays blocked');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain('cleaned up');
    expect(readFileSync(f.resolvConf, 'utf8')).toBe(f.original);
    const open = await onRunner(internet, f, `${CHECK}\ncheck direct curl -sf -m 3 http://198.51.100.11:443/`);
    expect(statuses(open)).toEqual({ direct: 0 });
  }, 120_000);

  it('a second agent is refused while one runs, and bad input starts nothing', async () => {
    const f = fixture();
    const bad = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test:70000', ...f.flags], { cwd: REPO });
    expect(bad.code).toBe(251);
    expect(bad.stderr).toMatch(/RW_ENDPOINT_INVALID/);
    expect(readFileSync(f.resolvConf, 'utf8')).toBe(f.original);
    const first = await internet.runInHost([...RUNWALL, 'agent', 'start', '--egress-policy', 'audit', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(first.code).toBe(0);
    const second = await internet.runInHost([...RUNWALL, 'agent', 'start', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(second.code).toBe(250);
    expect(second.stderr).toMatch(/RW_AGENT_RUNNING/);
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(stop.code).toBe(0);
  }, 120_000);
});

describe('runwall agent fails closed and resists tampering', () => {
  let internet: Internet;
  beforeAll(async () => {
    internet = await createInternet();
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('in block mode, an agent that cannot start leaves the machine blocked and says so', async () => {
    const f = fixture();
    // Something else holds the agent's resolver address: the DNS proxy cannot bind.
    const squatter = internet.spawnInHost(['socat', 'UDP4-LISTEN:53,bind=127.0.0.153,fork', 'EXEC:/bin/true'], { timeoutMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    try {
      const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
      expect(start.code).toBe(250);
      expect(start.stderr).toMatch(/RW_DNS_BIND_FAILED.*127\.0\.0\.153.*fail-closed/);
      expect(readFileSync(f.resolvConf, 'utf8')).toBe(f.original);
      const blocked = await onRunner(internet, f, `${CHECK}\ncheck direct curl -sf -m 3 http://198.51.100.11:443/\ncheck dns dig +time=1 +tries=1 @198.51.100.53 allowed.test`);
      expect(statuses(blocked)).toEqual({ direct: 7, dns: 9 });
    } finally {
      squatter.child.kill('SIGKILL');
      await squatter.done;
    }
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', ...f.flags.slice(0, 2)], { cwd: REPO });
    expect(stop.stdout).toContain('cleaned up');
    const open = await onRunner(internet, f, `${CHECK}\ncheck direct curl -sf -m 3 http://198.51.100.11:443/`);
    expect(statuses(open)).toEqual({ direct: 0 });
  }, 120_000);

  it('puts back a deleted or flushed table and a rewritten resolv.conf, and reports the tampering', async () => {
    const f = fixture();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    await internet.runInHost(['nft', 'delete', 'table', 'inet', 'runwall_agent']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const afterDelete = await onRunner(internet, f, `${CHECK}\ncheck direct curl -sf -m 3 http://198.51.100.11:443/\ncheck allowed curl -sf -m 3 http://allowed.test:443/`);
    expect(statuses(afterDelete)).toEqual({ direct: 7, allowed: 0 });
    await internet.runInHost(['nft', 'flush', 'chain', 'inet', 'runwall_agent', 'job_egress']);
    writeFileSync(f.resolvConf, 'nameserver 198.51.100.53\n');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(readFileSync(f.resolvConf, 'utf8')).toMatch(/^nameserver 127\.0\.0\.153$/m);
    const afterFlush = await onRunner(internet, f, `${CHECK}\ncheck direct curl -sf -m 3 http://198.51.100.11:443/`);
    expect(statuses(afterFlush)).toEqual({ direct: 7 });
    const reportPath = join(f.dir, 'report.json');
    await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...f.flags.slice(0, 2)], { cwd: REPO });
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    const tamper = report.events.filter((e) => e.kind === 'agent' && e.action === 'tamper').map((e) => (e.kind === 'agent' ? e.message : ''));
    expect(tamper.join('\n')).toMatch(/gone/);
    expect(tamper.join('\n')).toMatch(/flushed/);
    expect(tamper.join('\n')).toMatch(/resolv\.conf was changed/);
    expect(report.enforcement.failClosed).toBe(true);
    expect(report.enforcement.problems.length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
