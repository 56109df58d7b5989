// `runwall agent` with the TLS SNI / HTTP Host check: local processes (output) and a container
// behind a bridge (forward) cannot front another name on an admitted address; a killed agent
// leaves checked flows failing (fail closed) until `agent stop` removes its rules.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Container, type Hit, type Internet } from '../../helpers/internet.js';
import { statuses } from '../../helpers/job-checks.js';
import { REPO, RUNWALL, eventsOf } from '../../helpers/runwall-cli.js';

const CHECK = `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }`;
const FRONTED = 'curl -s -m 5 --connect-to evil.test:443:allowed.test:443 https://evil.test/';

interface Fixture {
  readonly dir: string;
  readonly resolvConf: string;
  readonly flags: string[];
  readonly stateFlags: string[];
}

function fixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-agent-l7-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 198.51.100.53\n');
  mkdirSync(join(dir, 'docker'));
  const stateFlags = ['--state-dir', join(dir, 'state')];
  return { dir, resolvConf, stateFlags, flags: [...stateFlags, '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'docker', 'daemon.json')] };
}

/** A shell on the "runner" whose /etc/resolv.conf is the file the agent manages. */
function onRunner(internet: Internet, f: Fixture, script: string) {
  return internet.runInHost(['unshare', '--mount', 'sh', '-c', `mount --bind ${f.resolvConf} /etc/resolv.conf && ${script}`], { timeoutMs: 30_000 });
}

function inContainer(container: Container, f: Fixture, script: string) {
  const resolv = join(f.dir, 'container-resolv.conf');
  writeFileSync(resolv, 'nameserver 203.0.113.129\n');
  return container.run(['unshare', '--mount', 'sh', '-c', `mount --bind ${resolv} /etc/resolv.conf && ${script}`], { timeoutMs: 30_000 });
}

const tlsHits = (hits: readonly Hit[], host: string) => hits.filter((hit) => hit.kind === 'tls' && hit.host === host);

async function l7Chains(internet: Internet, families = 'iptables -S; ip6tables -S'): Promise<string> {
  const listing = await internet.runInHost(['sh', '-c', families]);
  return listing.stdout.split('\n').filter((line) => line.includes('RWL7')).join('\n');
}

describe('runwall agent: TLS SNI and HTTP Host checked against the policy', () => {
  let internet: Internet;
  let container: Container;
  beforeAll(async () => {
    internet = await createInternet();
    container = await internet.addContainer('docker0');
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('refuses domain fronting from the machine and from a container, reports it, and removes its rules on stop', async () => {
    const f = fixture();
    await internet.clearHits();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    expect(await l7Chains(internet)).toContain('-A RWL7-agent');

    const local = await onRunner(internet, f, `${CHECK}\ncheck allowed curl -s -m 5 https://allowed.test/\ncheck fronted ${FRONTED}`);
    expect(statuses(local)['allowed']).toBe(35);
    expect(statuses(local)['fronted']).not.toBe(0);
    const boxed = await inContainer(container, f, `${CHECK}\ncheck allowed curl -s -m 5 https://allowed.test/\ncheck fronted ${FRONTED}`);
    expect(statuses(boxed)['allowed']).toBe(35);
    expect(statuses(boxed)['fronted']).not.toBe(0);
    const hits = await internet.hits();
    expect(tlsHits(hits, 'allowed.test').map((hit) => hit.from).sort()).toEqual(['203.0.113.254', '203.0.113.254']); // the container is masqueraded
    expect(tlsHits(hits, 'evil.test')).toEqual([]);

    const reportPath = join(f.dir, 'report.json');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...f.stateFlags], { cwd: REPO });
    expect(stop.code).toBe(0);
    expect(await l7Chains(internet)).toBe('');
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    const fronted = eventsOf(report, 'http').filter((e) => e.host === 'evil.test');
    expect(fronted.every((e) => e.verdict === 'blocked' && e.tls && e.destination === '198.51.100.10')).toBe(true);
    expect(fronted.reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(2);
    expect(fronted[0]?.rule.explanation).toBe('TLS to 198.51.100.10:443 named evil.test (SNI), which the policy does not allow; the address was admitted for allowed.test');
    expect(eventsOf(report, 'agent').find((e) => e.action === 'enforcing')?.message).toContain('TLS SNI / HTTP Host check on');
  }, 120_000);

  it('puts back its iptables rules when a root job flushes or unhooks them, and reports the tampering', async () => {
    const f = fixture();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    const reportPath = join(f.dir, 'report.json');
    try {
      await internet.runInHost(['sh', '-c', 'iptables -F RWL7-agent && iptables -D FORWARD -p tcp -j RWL7-agent']);
      expect(await l7Chains(internet, 'iptables -S')).not.toContain('-A RWL7-agent -m mark');
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await l7Chains(internet, 'iptables -S')).toContain('-A RWL7-agent -m mark');
      await internet.clearHits();
      const after = await onRunner(internet, f, `${CHECK}\ncheck fronted ${FRONTED}`);
      expect(statuses(after)['fronted']).not.toBe(0);
      expect(tlsHits(await internet.hits(), 'evil.test')).toEqual([]);
    } finally {
      await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...f.stateFlags], { cwd: REPO });
    }
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    const tamper = eventsOf(report, 'agent').filter((e) => e.action === 'tamper');
    expect(tamper.map((e) => e.message).join('\n')).toMatch(/iptables chain RWL7-agent holds 0 of its 6 rules \(IPv4\); the L7 check's rules were restored/);
    expect(report.enforcement.failClosed).toBe(true);
  }, 120_000);

  it('killed in block mode, flows the check holds fail (fail closed) until `agent stop` removes its rules', async () => {
    const f = fixture();
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...f.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    // Resolving through the agent admits 198.51.100.10:443 to the firewall for the answer's TTL.
    const before = await onRunner(internet, f, `${CHECK}\ncheck allowed curl -s -m 5 https://allowed.test/`);
    expect(statuses(before)).toEqual({ allowed: 35 });
    const status = JSON.parse((await internet.runInHost([...RUNWALL, 'agent', 'status', ...f.stateFlags], { cwd: REPO })).stdout) as { pid: number };
    process.kill(status.pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await internet.clearHits();
    // The address is still admitted, so the connection opens; its ClientHello waits for a reader that is gone.
    const after = await onRunner(internet, f, `${CHECK}\ncheck held curl -s -m 3 --resolve allowed.test:443:198.51.100.10 https://allowed.test/`);
    expect(statuses(after)).toEqual({ held: 28 });
    expect(tlsHits(await internet.hits(), 'allowed.test')).toEqual([]);
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', ...f.stateFlags], { cwd: REPO });
    expect(stop.stdout).toContain('cleaned up');
    expect(await l7Chains(internet)).toBe('');
    const open = await onRunner(internet, f, `${CHECK}\ncheck open curl -s -m 5 --resolve allowed.test:443:198.51.100.10 https://allowed.test/`);
    expect(statuses(open)).toEqual({ open: 35 });
  }, 120_000);
});
