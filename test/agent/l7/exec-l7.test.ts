// `runwall exec` with the TLS SNI / HTTP Host check against the project's test internet: a shared
// address admitted for allowed.test does not open other names on it (domain fronting).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpEvent } from '../../../src/protocol/index.js';
import { createInternet, type Hit, type Internet } from '../../helpers/internet.js';
import { statuses } from '../../helpers/job-checks.js';
import { eventsOf, execInHost, type ExecResult } from '../../helpers/runwall-cli.js';

const POLICY = ['--allowed-endpoints', 'allowed.test:443 allowed.test:80'];
const CHECK = `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }`;
const SEND_HELLO = 'node --import tsx test/agent/l7/send-client-hello.ts';
const FRONTED_TLS = 'curl -s -m 5 --connect-to evil.test:443:allowed.test:443 https://evil.test/';
const FRONTED_HTTP = 'curl -sf -m 5 --connect-to evil.test:80:allowed.test:80 http://evil.test/';

function tlsHits(hits: readonly Hit[], host: string): Hit[] {
  return hits.filter((hit) => hit.kind === 'tls' && hit.host === host);
}

function httpEvents(result: ExecResult, host: string): HttpEvent[] {
  return eventsOf(result.report!, 'http').filter((event) => event.host === host);
}

describe('runwall exec: TLS SNI and HTTP Host checked against the policy', () => {
  let internet: Internet;
  let result: ExecResult;
  let hits: Hit[];

  beforeAll(async () => {
    internet = await createInternet();
    await internet.clearHits();
    result = await execInHost(
      internet,
      POLICY,
      `${CHECK}
       check tls_allowed curl -s -m 5 https://allowed.test/
       check tls_fronted ${FRONTED_TLS}
       check http_allowed curl -sf -m 5 http://allowed.test/
       check http_fronted ${FRONTED_HTTP}
       check http_absolute curl -sf -m 5 --request-target http://evil.test/ http://allowed.test/
       check tls_no_sni curl -sk -m 5 https://198.51.100.10/
       echo "split_allowed $(${SEND_HELLO} allowed.test 443 allowed.test 40 300)"
       echo "split_fronted $(${SEND_HELLO} allowed.test 443 evil.test 40 300)"`,
      { timeoutMs: 90_000 },
    );
    hits = await internet.hits();
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
  });

  it('TLS to an allowed name reaches the server with its SNI (curl 35: the server answers with an alert)', () => {
    expect(result.code).toBe(0);
    expect(statuses(result)['tls_allowed']).toBe(35);
    expect(tlsHits(hits, 'allowed.test').length).toBeGreaterThanOrEqual(1);
    expect(httpEvents(result, 'allowed.test').find((e) => e.tls)).toMatchObject({ verdict: 'allowed', destination: '198.51.100.10', port: 443 });
  });

  it('domain fronting over TLS is refused before the server sees the ClientHello, and reported with its rule', () => {
    expect(statuses(result)['tls_fronted']).not.toBe(0);
    expect(tlsHits(hits, 'evil.test')).toEqual([]);
    const [event] = httpEvents(result, 'evil.test').filter((e) => e.tls);
    expect(event).toMatchObject({ kind: 'http', verdict: 'blocked', destination: '198.51.100.10', port: 443, tls: true });
    expect(event?.rule).toEqual({
      source: 'default-deny',
      explanation: 'TLS to 198.51.100.10:443 named evil.test (SNI), which the policy does not allow; the address was admitted for allowed.test',
      suggestion: 'add `evil.test:443` to allowed-endpoints if the job should reach it',
    });
  });

  it('the same for plain HTTP: a Host or an absolute-form target naming another name is refused', () => {
    const s = statuses(result);
    expect(s['http_allowed']).toBe(0);
    expect(s['http_fronted']).not.toBe(0);
    expect(s['http_absolute']).not.toBe(0);
    const httpHits = hits.filter((hit) => hit.kind === 'http' && hit.port === 80);
    expect(httpHits.map((hit) => hit.host)).toEqual(['allowed.test']);
    const refused = eventsOf(result.report!, 'http').filter((e) => !e.tls && e.verdict === 'blocked');
    expect(refused.map((e) => e.rule.explanation)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('HTTP to 198.51.100.10:80 named evil.test (Host), which the policy does not allow'),
        expect.stringContaining('HTTP to 198.51.100.10:80 named evil.test (request target)'),
      ]),
    );
  });

  it('TLS without a server name to an address admitted for a name is refused', () => {
    expect(statuses(result)['tls_no_sni']).not.toBe(0);
    expect(httpEvents(result, '198.51.100.10')[0]?.rule.explanation).toMatch(/without a server name \(SNI\); only ip\/cidr allowed-endpoints/);
  });

  it('a ClientHello split across TCP segments is still read: allowed through, fronted refused', () => {
    expect(result.stdout).toMatch(/^split_allowed alert$/m);
    expect(result.stdout).toMatch(/^split_fronted reset$/m);
    expect(tlsHits(hits, 'allowed.test').length).toBeGreaterThanOrEqual(2);
    expect(tlsHits(hits, 'evil.test')).toEqual([]);
  });

  it('the report counts the refusals and never recommends a fronted name', () => {
    expect(result.report!.summary.counts.blocked).toBeGreaterThanOrEqual(4);
    expect(result.report!.recommendedPolicy.allowedEndpoints).not.toContain('evil.test:443');
    expect(result.report!.recommendedPolicy.excluded.map((e) => e.destination)).toContain('evil.test:443');
  });

  it('audit mode lets a fronted flow through and records the would-be verdict', async () => {
    await internet.clearHits();
    const audit = await execInHost(internet, [...POLICY, '--egress-policy', 'audit'], `${CHECK}\ncheck tls_fronted ${FRONTED_TLS}\ncheck http_fronted ${FRONTED_HTTP}`);
    expect(statuses(audit)).toEqual({ tls_fronted: 35, http_fronted: 0 });
    const seen = await internet.hits();
    expect(tlsHits(seen, 'evil.test')).toHaveLength(1);
    const events = httpEvents(audit, 'evil.test');
    expect(events.map((e) => [e.tls, e.verdict])).toEqual(expect.arrayContaining([[true, 'audit'], [false, 'audit']]));
    expect(events[0]?.rule.explanation).toContain('audit mode: let through and recorded');
  }, 60_000);

  it('--l7 off turns the check off (and says so); any other value is refused before anything is set up', async () => {
    await internet.clearHits();
    const off = await execInHost(internet, [...POLICY, '--l7', 'off'], `${CHECK}\ncheck tls_fronted ${FRONTED_TLS}`);
    expect(statuses(off)['tls_fronted']).toBe(35);
    expect(tlsHits(await internet.hits(), 'evil.test')).toHaveLength(1);
    expect(eventsOf(off.report!, 'http')).toEqual([]);
    expect(eventsOf(off.report!, 'agent').find((e) => e.action === 'enforcing')?.message).toContain('TLS SNI / HTTP Host check off');
    const bad = await execInHost(internet, [...POLICY, '--l7', 'yes'], 'true');
    expect(bad.code).toBe(251);
    expect(bad.stderr).toContain('RW_USAGE');
    expect(bad.stderr).toContain('--l7 must be "on" or "off"');
  }, 60_000);

  it('200 concurrent TLS connections to allowed names all get through, folded into few events', async () => {
    await internet.clearHits();
    const many = await execInHost(
      internet,
      ['--allowed-endpoints', 'allowed.test:443 *.allowed.test:443'],
      // One lookup admits the address; the 200 connections then skip DNS (so a burst of 200 lookups is not what is measured).
      `curl -s -m 5 -o /dev/null https://www.allowed.test/
       seq 200 | xargs -P 200 -I{} sh -c 'curl -s -m 20 -o /dev/null --resolve www.allowed.test:443:198.51.100.12 https://www.allowed.test/; echo "c $?"' | sort | uniq -c`,
      { timeoutMs: 90_000 },
    );
    expect(many.stdout.trim()).toBe('200 c 35');
    expect(tlsHits(await internet.hits(), 'www.allowed.test')).toHaveLength(201);
    const events = httpEvents(many, 'www.allowed.test');
    expect(events.every((e) => e.verdict === 'allowed')).toBe(true);
    const l7Seen = eventsOf(many.report!, 'agent').find((e) => e.action === 'sensor' && e.message.startsWith('TLS SNI'))?.message;
    expect(l7Seen).toMatch(/ 201 flows judged, 0 denied$/);
    expect(events.reduce((sum, e) => sum + (e.count ?? 1), 0), l7Seen).toBe(201);
    expect(events.length).toBeLessThan(50);
  }, 120_000);

  it('every run removed its iptables rules', async () => {
    const listing = await internet.runInHost(['sh', '-c', 'iptables -S; ip6tables -S']);
    expect(listing.stdout).not.toContain('RWL7');
  });
});
