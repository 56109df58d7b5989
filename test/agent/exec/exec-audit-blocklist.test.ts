// Audit mode records everything with its would-be verdict; the block list wins in every mode.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { CHECKS, statuses } from '../../helpers/job-checks.js';
import { eventsOf, execInHost } from '../../helpers/runwall-cli.js';

let internet: Internet;
beforeAll(async () => {
  internet = await createInternet();
}, 60_000);
afterAll(async () => {
  await internet?.destroy();
});

describe('runwall exec --egress-policy audit', () => {
  it('lets everything but DNS bypass through and reports each with the verdict it would have had', async () => {
    await internet.dns.clear();
    const result = await execInHost(internet, ['--egress-policy', 'audit', '--allowed-endpoints', 'allowed.test *.allowed.test [2001:db8::10]'], CHECKS);
    expect(result.code).toBe(0);
    const s = statuses(result);
    expect(s).toMatchObject({ allowed: 0, allowed6: 0, cname: 0, denied_name: 0, direct_ip: 0, direct_ip6: 0, port_mismatch: 0, icmp: 0, udp443: 0 });
    // DNS to another resolver is dropped in every mode: it is how names leak.
    expect(s['rogue_udp']).not.toBe(0);
    const report = result.report!;
    expect(report.enforcement.enforced).toBe(false);
    expect(eventsOf(report, 'dns').find((e) => e.name === 'other.test')).toMatchObject({ verdict: 'audit', rcode: 'NOERROR' });
    expect((await internet.dns.queries()).map((q) => q.name)).toContain('other.test');
    const connections = eventsOf(report, 'connection');
    const byTarget = (ip: string, port: number | null, protocol: string) =>
      connections.find((e) => e.destination === ip && e.port === port && e.protocol === protocol);
    expect(byTarget('198.51.100.11', 443, 'tcp')?.verdict).toBe('audit');
    expect(byTarget('198.51.100.11', 443, 'tcp')?.name).toBe('other.test');
    expect(byTarget('198.51.100.10', 8443, 'tcp')?.verdict).toBe('audit');
    expect(byTarget('198.51.100.10', 443, 'udp')?.verdict).toBe('audit');
    expect(connections.find((e) => e.protocol === 'icmp')?.verdict).toBe('audit');
    expect(byTarget('198.51.100.10', 443, 'tcp')?.verdict).toBe('allowed');
    expect(report.summary.counts.audit).toBeGreaterThan(0);
    expect(report.recommendedPolicy.allowedEndpoints).toEqual(expect.arrayContaining(['other.test:443', 'allowed.test:443', 'allowed.test:8443']));
  }, 90_000);
});

describe('global block list', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-bl-'));
  const blockList = join(dir, 'block-list.txt');
  writeFileSync(blockList, '# IOCs\nevil.test  exfiltration endpoint of a compromised action\n198.51.100.11 C2 address\n');
  const script = `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
    check evil curl -sf -m 3 http://evil.test:443/
    check evil_sub curl -sf -m 3 http://x.y.evil.test:443/
    check via_cname curl -sf -m 3 http://exfil.evil-cname.test:443/
    check ip curl -sf -m 3 http://198.51.100.11:443/
    check fine curl -sf -m 3 http://allowed.test:443/`;

  for (const mode of ['block', 'audit'] as const) {
    it(`wins over allowed-endpoints in ${mode} mode and is reported as attack-blocked`, async () => {
      await internet.dns.clear();
      const result = await execInHost(
        internet,
        ['--egress-policy', mode, '--block-list', blockList, '--allowed-endpoints', 'evil.test *.evil.test *.evil-cname.test 198.51.100.11 allowed.test'],
        script,
      );
      expect(statuses(result), result.stderr).toEqual({ evil: 6, evil_sub: 6, via_cname: 6, ip: 7, fine: 0 });
      const report = result.report!;
      const dns = eventsOf(report, 'dns');
      for (const name of ['evil.test', 'x.y.evil.test', 'exfil.evil-cname.test']) {
        const event = dns.find((e) => e.name === name);
        expect(event, name).toMatchObject({ verdict: 'attack-blocked', rcode: 'NXDOMAIN' });
        expect(event?.rule.source).toBe('block-list');
        expect(event?.rule.suggestion).toBeUndefined();
      }
      // Names on the list never reach the upstream; a CNAME into the list is cut after the upstream answered.
      const seen = (await internet.dns.queries()).map((q) => q.name);
      expect(seen).not.toContain('evil.test');
      expect(seen).not.toContain('x.y.evil.test');
      const ip = eventsOf(report, 'connection').find((e) => e.destination === '198.51.100.11');
      expect(ip).toMatchObject({ verdict: 'attack-blocked', port: 443 });
      expect(ip?.rule.reason).toBe('C2 address');
      expect(report.summary.verdict).toBe('attack-blocked');
      expect(report.recommendedPolicy.allowedEndpoints.join(' ')).not.toMatch(/evil|198\.51\.100\.11/);
    }, 90_000);
  }
});

describe('DNS admissions expire with the TTL', () => {
  it('an address learned from a 1-second answer is refused once TTL and grace have passed', async () => {
    const result = await execInHost(
      internet,
      ['--allowed-endpoints', 'short.allowed.test', '--ttl-grace', '1'],
      `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
       check fresh curl -sf -m 3 http://short.allowed.test:443/
       sleep 4
       check expired curl -sf -m 3 --resolve short.allowed.test:443:198.51.100.30 http://short.allowed.test:443/
       check again curl -sf -m 3 http://short.allowed.test:443/`,
    );
    expect(statuses(result)).toEqual({ fresh: 0, expired: 7, again: 0 });
    const expired = eventsOf(result.report!, 'connection').find((e) => e.verdict === 'blocked');
    expect(expired).toMatchObject({ destination: '198.51.100.30', port: 443, name: 'short.allowed.test' });
    expect(expired?.rule.explanation).toContain('expired');
  }, 60_000);
});
