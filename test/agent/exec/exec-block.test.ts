// `runwall exec` in block mode against the project's test internet: what a user relies on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { CHECKS, statuses } from '../../helpers/job-checks.js';
import { eventsOf, execInHost, type ExecResult } from '../../helpers/runwall-cli.js';

describe('runwall exec --egress-policy block', () => {
  let internet: Internet;
  let result: ExecResult;

  beforeAll(async () => {
    internet = await createInternet();
    await internet.dns.clear();
    await internet.clearHits();
    result = await execInHost(
      internet,
      ['--egress-policy', 'block', '--allowed-endpoints', 'allowed.test:443\n*.allowed.test:443   [2001:db8::10]:443'],
      CHECKS,
    );
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
  });

  it('runs the job and writes a report', () => {
    expect(result.stderr).toContain('report:');
    expect(result.code).toBe(0);
    expect(result.report?.policy.egressPolicy).toBe('block');
    expect(result.report?.enforcement.enforced).toBe(true);
    // Admissions took the netlink path: a fallback to libnftables would be reported as an agent error.
    const errors = eventsOf(result.report!, 'agent').filter((e) => e.action === 'error').map((e) => e.message);
    expect(errors.filter((m) => m.includes('libnftables'))).toEqual([]);
  });

  it('allowed names connect, over IPv4, IPv6, through a CNAME chain and a wildcard at depth', () => {
    const s = statuses(result);
    expect(s).toMatchObject({ allowed: 0, allowed6: 0, cname: 0, wildcard_deep: 0 });
    const connections = eventsOf(result.report!, 'connection').filter((e) => e.verdict === 'allowed');
    expect(connections.map((e) => e.name)).toEqual(expect.arrayContaining(['allowed.test', 'alias.allowed.test', 'deep.sub.allowed.test']));
  });

  it('a name outside the policy gets NXDOMAIN and the upstream never sees the query', async () => {
    expect(statuses(result)['denied_name']).toBe(6); // curl: could not resolve host
    const dns = eventsOf(result.report!, 'dns').find((e) => e.name === 'other.test');
    expect(dns).toMatchObject({ verdict: 'blocked', rcode: 'NXDOMAIN', answers: [] });
    expect(dns?.rule.suggestion).toContain('other.test');
    const seen = (await internet.dns.queries()).map((q) => q.name);
    expect(seen).toContain('allowed.test');
    expect(seen).not.toContain('other.test');
  });

  it('direct-IP connections (v4 and v6) and a port the policy does not name are refused and reported', () => {
    const s = statuses(result);
    expect(s).toMatchObject({ direct_ip: 7, direct_ip6: 7, port_mismatch: 7 });
    const blocked = eventsOf(result.report!, 'connection').filter((e) => e.verdict === 'blocked');
    const v4 = blocked.find((e) => e.destination === '198.51.100.11' && e.port === 443);
    expect(v4?.protocol).toBe('tcp');
    expect(v4?.rule.suggestion).toContain('198.51.100.11:443');
    expect(blocked.find((e) => e.destination === '2001:db8::11' && e.family === 6)).toBeDefined();
    const mismatch = blocked.find((e) => e.destination === '198.51.100.10' && e.port === 8443);
    expect(mismatch?.name).toBe('allowed.test');
    expect(mismatch?.rule.suggestion).toContain('allowed.test:8443');
  });

  it('UDP/443 (QUIC) and ICMP to an allowed address are blocked', async () => {
    const s = statuses(result);
    expect(s['udp443']).not.toBe(0);
    expect(s['icmp']).not.toBe(0);
    const blocked = eventsOf(result.report!, 'connection').filter((e) => e.verdict === 'blocked');
    expect(blocked.find((e) => e.protocol === 'udp' && e.port === 443)).toBeDefined();
    expect(blocked.find((e) => e.protocol === 'icmp')).toBeDefined();
    const hits = await internet.hits();
    expect(hits.filter((h) => h.kind === 'udp')).toEqual([]);
  });

  it('DNS to any other resolver over UDP, TCP and 853 is dropped and reported', async () => {
    const s = statuses(result);
    expect(s['rogue_udp']).not.toBe(0);
    expect(s['rogue_tcp']).not.toBe(0);
    expect(s['rogue_dot']).not.toBe(0);
    expect((await internet.hits()).filter((h) => h.kind === 'dns-rogue')).toEqual([]);
    const bypass = eventsOf(result.report!, 'connection').filter((e) => e.rule.entry === 'dns-only-through-runwall');
    expect(bypass.map((e) => `${e.protocol}/${e.port}`)).toEqual(expect.arrayContaining(['udp/53', 'tcp/53', 'tcp/853']));
    expect(bypass.every((e) => e.verdict === 'blocked' && e.destination === '203.0.113.53')).toBe(true);
  });

  it('recommends the endpoints this run used, ready to paste', () => {
    const recommended = result.report!.recommendedPolicy;
    expect(recommended.allowedEndpoints).toEqual(expect.arrayContaining(['allowed.test:443', 'alias.allowed.test:443', 'deep.sub.allowed.test:443']));
    expect(recommended.allowedEndpointsText.split('\n')).toEqual(recommended.allowedEndpoints);
  });
});

describe('wildcard and apex', () => {
  let internet: Internet;
  afterAll(async () => {
    await internet?.destroy();
  });

  it('*.allowed.test admits subdomains at any depth but not allowed.test itself', async () => {
    internet = await createInternet();
    const result = await execInHost(
      internet,
      ['--allowed-endpoints', '*.ALLOWED.test'],
      `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
       check apex curl -sf -m 3 http://allowed.test:443/
       check www curl -sf -m 3 http://www.allowed.test:443/
       check deep curl -sf -m 3 http://deep.sub.allowed.test:443/`,
    );
    expect(statuses(result)).toEqual({ apex: 6, www: 0, deep: 0 });
    expect(eventsOf(result.report!, 'dns').find((e) => e.name === 'allowed.test')?.verdict).toBe('blocked');
  }, 60_000);
});

describe('DNS rebinding', () => {
  let internet: Internet;
  afterAll(async () => {
    await internet?.destroy();
  });

  it('an allowed name answering with a metadata or loopback address is withheld, unless the address is allowed itself', async () => {
    internet = await createInternet();
    await internet.dns.set('imds.allowed.test', [{ type: 'A', data: '169.254.169.254' }]);
    await internet.dns.set('local.allowed.test', [{ type: 'AAAA', data: '::1' }]);
    await internet.dns.set('fine.allowed.test', [{ type: 'A', data: '198.51.100.12' }]);
    const result = await execInHost(
      internet,
      ['--allowed-endpoints', '*.allowed.test'],
      `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
       check imds sh -c 'dig +short imds.allowed.test | grep -q .'
       check local sh -c 'dig +short AAAA local.allowed.test | grep -q .'
       check fine sh -c 'dig +short fine.allowed.test | grep -q 198.51.100.12'`,
    );
    expect(statuses(result)).toEqual({ imds: 1, local: 1, fine: 0 });
    const imds = eventsOf(result.report!, 'dns').find((e) => e.name === 'imds.allowed.test');
    expect(imds).toMatchObject({ verdict: 'blocked', rcode: 'NXDOMAIN', admitted: [] });
    expect(imds?.rule.explanation).toMatch(/169\.254\.169\.254 is a link-local address.*rebinding/);
    // Named explicitly, the address is the user's choice: the answer passes (nothing connects to it here).
    const explicit = await execInHost(
      internet,
      ['--allowed-endpoints', '*.allowed.test 169.254.169.254:443'],
      `dig +short imds.allowed.test | grep -q 169.254.169.254; echo "imds $?"`,
    );
    expect(statuses(explicit)).toEqual({ imds: 0 });
  }, 60_000);
});
