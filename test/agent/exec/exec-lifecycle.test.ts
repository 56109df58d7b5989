// The sandbox's life: status and stdio pass through, signals reach the job, nothing is left behind,
// a killed runwall leaves the job with no route out and the next run cleans up, bad input sets up nothing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { statuses } from '../../helpers/job-checks.js';
import { REPO, RUNWALL, execInHost } from '../../helpers/runwall-cli.js';

let internet: Internet;
beforeAll(async () => {
  internet = await createInternet();
}, 60_000);
afterAll(async () => {
  await internet?.destroy();
});

/**
 * What runwall left that belongs to this test's host namespace: tables and links there, state files
 * recorded from there, and the job namespaces and cgroups of the given runs (other test files run
 * their own sandboxes at the same time, so global names are matched by run id).
 */
async function leftovers(runIds: readonly string[] = []): Promise<string> {
  const ids = runIds.length > 0 ? runIds.join('|') : 'none';
  const result = await internet.runInHost([
    'sh',
    '-c',
    `ino=$(stat -L -c %i /proc/self/ns/net)
     nft list tables | grep runwall_ ; ip -br link | grep -o 'rwh-[0-9a-f]*'
     grep -l "\"hostNetns\":$ino," /run/runwall/exec/*.json 2>/dev/null
     ip netns list | grep -oE '^runwall-(${ids})' ; ls -d /sys/fs/cgroup/unified/runwall/*/ 2>/dev/null | grep -E '${ids}'; true`,
  ]);
  return result.stdout.trim();
}

describe('runwall exec lifecycle', () => {
  it("passes the command's exit status, stdin, stdout and stderr through", async () => {
    const result = await execInHost(internet, ['--allowed-endpoints', 'allowed.test'], 'read line; echo "out:$line"; echo "err:$line" >&2; exit 42', {
      stdin: 'hello\n',
    });
    expect(result.code).toBe(42);
    expect(result.stdout).toContain('out:hello');
    expect(result.stderr).toContain('err:hello');
    expect(result.report?.run.exitCode).toBe(42);
  }, 60_000);

  it('leaves no table, link, namespace, cgroup or state behind, and two runs at once do not collide', async () => {
    const before = await leftovers();
    const [a, b] = await Promise.all([
      execInHost(internet, ['--allowed-endpoints', 'allowed.test'], 'curl -sf -m 3 http://allowed.test:443/ >/dev/null; echo "a $?"'),
      execInHost(internet, ['--allowed-endpoints', 'other.test'], 'curl -sf -m 3 http://other.test:443/ >/dev/null; echo "b $?"; curl -sf -m 3 http://allowed.test:443/ >/dev/null; echo "c $?"'),
    ]);
    expect(statuses(a)).toEqual({ a: 0 });
    expect(statuses(b)).toEqual({ b: 0, c: 6 });
    expect(a.report?.run.runId).not.toBe(b.report?.run.runId);
    expect(await leftovers([a.report!.run.runId, b.report!.run.runId])).toBe(before);
  }, 90_000);

  it("works on a Docker host whose iptables FORWARD policy is DROP, and removes its accept rules after", async () => {
    await internet.runInHost(['sh', '-c', 'iptables -P FORWARD DROP && ip6tables -P FORWARD DROP']);
    try {
      const result = await execInHost(
        internet,
        ['--allowed-endpoints', 'allowed.test'],
        `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
         check v4 curl -sf -m 3 http://allowed.test:443/
         check v6 curl -sf -m 3 -6 http://allowed.test:443/
         check direct curl -sf -m 3 http://198.51.100.11:443/`,
      );
      expect(statuses(result)).toEqual({ v4: 0, v6: 0, direct: 7 });
      const rules = await internet.runInHost(['sh', '-c', 'iptables -S FORWARD; ip6tables -S FORWARD']);
      expect(rules.stdout).not.toContain('runwall');
    } finally {
      await internet.runInHost(['sh', '-c', 'iptables -P FORWARD ACCEPT; ip6tables -P FORWARD ACCEPT']);
    }
  }, 60_000);

  it('the job cannot change the rules, see the host, or use the capabilities a build does not need', async () => {
    const result = await execInHost(
      internet,
      ['--allowed-endpoints', 'allowed.test'],
      `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
       check flush nft flush ruleset
       check route ip route replace default via 100.64.0.1
       check blocked_after curl -sf -m 3 http://198.51.100.11:443/
       echo "pids $(ls /proc | grep -c '^[0-9]')"
       echo "capeff $(grep CapEff /proc/self/status | awk '{print $2}')"`,
    );
    const s = statuses(result);
    expect(s['flush']).not.toBe(0);
    expect(s['route']).not.toBe(0);
    expect(s['blocked_after']).toBe(7);
    expect(s['pids']).toBeLessThan(10);
    const capEff = BigInt('0x' + (/capeff ([0-9a-f]+)/.exec(result.stdout)?.[1] ?? '0'));
    const CAP_NET_ADMIN = 12n;
    const CAP_SYS_ADMIN = 21n;
    const CAP_SYS_PTRACE = 19n;
    for (const cap of [CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE]) expect((capEff >> cap) & 1n).toBe(0n);
    expect(result.report?.enforcement.sandbox?.droppedCapabilities).toEqual(expect.arrayContaining(['sys_admin', 'net_admin', 'sys_ptrace', 'sys_module']));
  }, 60_000);

  it('forwards SIGTERM to the job and reports its status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runwall-sig-'));
    const report = join(dir, 'report.json');
    const run = internet.spawnInHost(
      [...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, '--report', report, '--', 'sh', '-c', 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'],
      { cwd: REPO, timeoutMs: 30_000 },
    );
    await new Promise<void>((resolve) => {
      run.child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    run.child.kill('SIGTERM');
    const done = await run.done;
    expect(done.stdout).toContain('got-term');
    expect(done.code).toBe(3);
  }, 60_000);

  it('a runwall killed with SIGKILL takes the job down with it, and the next run removes what it left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runwall-kill-'));
    const marker = join(dir, 'alive');
    const run = internet.spawnInHost(
      [...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, '--', 'sh', '-c', `date +%s%N > ${marker}; echo ready; while :; do date +%s%N > ${marker}; sleep 0.1; done`],
      { cwd: REPO, timeoutMs: 30_000 },
    );
    await new Promise<void>((resolve) => {
      run.child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    // nsenter execs node: the child's pid is runwall itself.
    run.child.kill('SIGKILL');
    await run.done;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { readFileSync } = await import('node:fs');
    const last = readFileSync(marker, 'utf8');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(readFileSync(marker, 'utf8')).toBe(last); // the job is gone
    const stale = await leftovers();
    expect(stale).toMatch(/runwall_[0-9a-f]{8}/); // its table stayed: no route out in the meantime
    const killedRun = /runwall_([0-9a-f]{8})/.exec(stale)![1]!;
    const next = await execInHost(internet, ['--allowed-endpoints', 'allowed.test'], 'true');
    expect(next.code).toBe(0);
    expect(next.report?.events.some((e) => e.kind === 'agent' && e.action === 'cleanup' && e.message.includes(killedRun))).toBe(true);
    expect(await leftovers([killedRun])).toBe('');
  }, 90_000);
});

describe('bad input sets up nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-bad-'));
  const badPolicy = join(dir, 'policy.yml');
  writeFileSync(badPolicy, 'egress-policy: block\nallowed-endpoint: [github.com]\n');
  const badBlockList = join(dir, 'block.txt');
  writeFileSync(badBlockList, 'evil.test\n');
  const cases: Array<[string, string[], RegExp]> = [
    ['a malformed endpoint', ['--allowed-endpoints', 'github.com:0'], /RW_ENDPOINT_INVALID.*github\.com:0/],
    ['an endpoint with a scheme', ['--allowed-endpoints', 'ok.test https://github.com'], /RW_ENDPOINT_INVALID.*https:\/\/github\.com/],
    ['an unknown mode', ['--egress-policy', 'enforce'], /RW_MODE_INVALID.*enforce/],
    ['a policy file with an unknown key', ['--policy', badPolicy], /RW_POLICY_INVALID.*allowed-endpoint/],
    ['a block list entry without a reason', ['--block-list', badBlockList], /RW_BLOCKLIST_INVALID.*evil\.test/],
    ['a missing policy file', ['--policy', join(dir, 'nope.yml')], /RW_FILE_UNREADABLE/],
    ['a bad upstream', ['--dns-upstream', 'resolver.example'], /RW_UPSTREAM_INVALID/],
  ];
  for (const [what, flags, message] of cases) {
    it(`${what}: exit 251, one clear line, nothing set up`, async () => {
      // Compared with what was there before, so a failure elsewhere in this file cannot fail these.
      const before = await leftovers();
      const result = await internet.runInHost([...RUNWALL, 'exec', ...flags, '--', 'sh', '-c', 'echo RAN'], { cwd: REPO });
      expect(result.code).toBe(251);
      expect(result.stdout).not.toContain('RAN');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      expect(await leftovers()).toBe(before);
    }, 30_000);
  }
});
