import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, parseBlockList, parseEndpointList, recommendPolicy, resolvePolicy } from '../../src/policy/index.js';
import type { EffectivePolicy, EgressMode, RunEvent, TransportProtocol, Verdict } from '../../src/protocol/index.js';
import { domain, fullIpv6, ipv4, ipv6Bytes, isDeepFrozen, port } from './helpers.js';
import { connection, dns, http } from './events.js';

function policy(mode: EgressMode, allowed: string, blockList = ''): EffectivePolicy {
  return resolvePolicy({
    flags: { egressPolicy: mode, allowedEndpoints: parseEndpointList(allowed, 'x') },
    blockList: parseBlockList(blockList, 'global.txt'),
    defaults: { dnsUpstream: '127.0.0.53' },
  });
}

describe('recommendPolicy', () => {
  const auditPolicy = policy('audit', '', 'evil.test exfiltration endpoint\n203.0.113.66 botnet');

  it('recommends name:port for every TCP destination the run reached, and name:443 for names it only resolved', () => {
    const recommended = recommendPolicy(
      [
        dns({ name: 'registry.test', verdict: 'audit', answers: ['198.51.100.10'] }),
        connection({ destination: '198.51.100.10', port: 443, verdict: 'audit', name: 'registry.test' }),
        connection({ destination: '198.51.100.10', port: 443, verdict: 'audit', name: 'Registry.Test.', count: 9 }),
        connection({ destination: '203.0.113.9', port: 8080, verdict: 'audit' }),
        connection({ destination: '2001:db8::9', port: 22, verdict: 'allowed' }),
        http({ host: 'api.test:8443', destination: '198.51.100.12', port: 8443, verdict: 'allowed' }),
        dns({ name: 'only-resolved.test', verdict: 'audit', answers: ['198.51.100.30'] }),
        dns({ name: 'does-not-exist.test', verdict: 'audit', rcode: 'NXDOMAIN' }),
      ],
      auditPolicy,
    );
    expect(recommended).toEqual({
      egressPolicy: 'block',
      allowedEndpoints: ['203.0.113.9:8080', '[2001:db8::9]:22', 'api.test:8443', 'only-resolved.test:443', 'registry.test:443'],
      allowedEndpointsText: '203.0.113.9:8080\n[2001:db8::9]:22\napi.test:8443\nonly-resolved.test:443\nregistry.test:443',
      excluded: [],
    });
    expect(isDeepFrozen(recommended)).toBe(true);
  });

  it('never recommends a block-list hit, and lists it as excluded with the reason', () => {
    const recommended = recommendPolicy(
      [
        dns({ name: 'evil.test', verdict: 'attack-blocked', rcode: 'NXDOMAIN' }),
        connection({ destination: '203.0.113.66', port: 443, verdict: 'attack-blocked' }),
        // Allowed in this run, but on the block list now: still never recommended.
        connection({ destination: '198.51.100.5', port: 443, verdict: 'allowed', name: 'x.evil.test' }),
      ],
      auditPolicy,
    );
    expect(recommended.allowedEndpoints).toEqual([]);
    expect(recommended.excluded).toEqual([
      { destination: '203.0.113.66:443', reason: 'on the global block list' },
      { destination: 'evil.test', reason: 'on the global block list' },
      { destination: 'x.evil.test:443', reason: 'on the global block list' },
    ]);
  });

  it('excludes UDP, ICMP and other protocols: allowed-endpoints admit TCP only', () => {
    const recommended = recommendPolicy(
      [
        connection({ destination: '198.51.100.7', port: 443, protocol: 'udp', verdict: 'audit', name: 'quic.test' }),
        connection({ destination: '198.51.100.8', port: null, protocol: 'icmp', verdict: 'audit' }),
      ],
      auditPolicy,
    );
    expect(recommended.allowedEndpoints).toEqual([]);
    expect(recommended.excluded).toEqual([
      { destination: '198.51.100.8/icmp', reason: 'allowed-endpoints admit TCP only' },
      { destination: 'quic.test:443/udp', reason: 'allowed-endpoints admit TCP only' },
    ]);
  });

  it('lists what block mode blocked in this run as excluded, not recommended', () => {
    const recommended = recommendPolicy([connection({ destination: '203.0.113.9', port: 443, verdict: 'blocked', name: 'new.test' })], policy('block', ''));
    expect(recommended.allowedEndpoints).toEqual([]);
    expect(recommended.excluded).toEqual([{ destination: 'new.test:443', reason: 'blocked by the policy in this run; add it yourself if the job needs it' }]);
  });

  it('falls back to the address when the recorded name is not a valid host name', () => {
    const recommended = recommendPolicy([connection({ destination: '198.51.100.7', port: 443, verdict: 'audit', name: 'bad name' })], auditPolicy);
    expect(recommended.allowedEndpoints).toEqual(['198.51.100.7:443']);
  });

  const verdicts: Verdict[] = ['allowed', 'audit', 'blocked', 'attack-blocked'];
  const protocols: TransportProtocol[] = ['tcp', 'tcp', 'tcp', 'udp', 'icmp'];
  const address = fc.oneof(ipv4, ipv6Bytes.map((bytes) => fullIpv6(bytes, false)), fc.constantFrom('203.0.113.66', '::ffff:198.51.100.7'));
  const event: fc.Arbitrary<RunEvent> = fc.oneof(
    fc
      .record({
        destination: address,
        port: fc.option(port, { freq: 10 }),
        protocol: fc.constantFrom(...protocols),
        verdict: fc.constantFrom(...verdicts),
        name: fc.option(fc.oneof(domain, fc.constantFrom('evil.test', 'a.evil.test', 'Mixed.Case.Test.')), { freq: 2 }),
      })
      .map(({ name, ...rest }) => connection(name === null ? rest : { ...rest, name })),
    fc
      .record({ name: fc.oneof(domain, fc.constant('evil.test')), verdict: fc.constantFrom(...verdicts), rcode: fc.constantFrom('NOERROR', 'NXDOMAIN') })
      .map((fields) => dns(fields)),
    fc.record({ host: domain, destination: ipv4, port, verdict: fc.constantFrom(...verdicts) }).map((fields) => http(fields)),
  );

  it('property: the recommendation does not depend on the order of the events', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 25 }), fc.constantFrom<EgressMode>('audit', 'block'), (events, mode) => {
        const original = policy(mode, '', 'evil.test exfiltration endpoint');
        expect(recommendPolicy([...events].reverse(), original)).toEqual(recommendPolicy(events, original));
      }),
    );
  });

  it('property: the recommendation parses back and, compiled in block mode, allows every connection it was made from', () => {
    const blockList = 'evil.test exfiltration endpoint\n203.0.113.66 botnet\n2001:db8:bad::/48 hostile';
    fc.assert(
      fc.property(fc.array(event, { maxLength: 25 }), fc.constantFrom<EgressMode>('audit', 'block'), (events, mode) => {
        const original = policy(mode, '', blockList);
        const recommended = recommendPolicy(events, original);
        const parsed = parseEndpointList(recommended.allowedEndpointsText, 'recommended');
        expect(parsed.map((e) => e.text)).toEqual(recommended.allowedEndpoints);
        expect([...recommended.allowedEndpoints].sort()).toEqual(recommended.allowedEndpoints);

        const compiled = compilePolicy({ ...original, egressPolicy: 'block', allowedEndpoints: [...parsed] });
        const originalCompiled = compilePolicy(original);
        const reached = new Set<string>();
        for (const e of events) {
          if (e.kind === 'connection' && e.name !== undefined) reached.add(e.name.toLowerCase().replace(/\.$/, ''));
          if (e.kind === 'http') reached.add(e.host);
        }
        for (const e of events) {
          if (e.kind === 'connection' && e.protocol === 'tcp' && e.port !== null && (e.verdict === 'allowed' || e.verdict === 'audit')) {
            const query = { ip: e.destination, port: e.port, protocol: 'tcp' as const, ...(e.name === undefined ? {} : { name: e.name }) };
            if (originalCompiled.decideConnection(query).verdict === 'attack-blocked') continue;
            expect(compiled.decideConnection(query).verdict, JSON.stringify(query)).toBe('allowed');
          }
          if (e.kind === 'http' && (e.verdict === 'allowed' || e.verdict === 'audit')) {
            const query = { ip: e.destination, port: e.port, protocol: 'tcp' as const, name: e.host };
            if (originalCompiled.decideConnection(query).verdict === 'attack-blocked') continue;
            expect(compiled.decideConnection(query).verdict).toBe('allowed');
          }
          if (e.kind === 'dns' && !reached.has(e.name) && e.rcode === 'NOERROR' && (e.verdict === 'allowed' || e.verdict === 'audit')) {
            if (originalCompiled.decideName(e.name).verdict === 'attack-blocked') continue;
            expect(compiled.decideName(e.name).verdict).toBe('allowed');
          }
        }
        // Nothing on the block list is ever recommended.
        for (const entry of parsed) {
          if (entry.kind === 'domain') expect(originalCompiled.decideName(entry.host).verdict).not.toBe('attack-blocked');
          if (entry.kind === 'ip') expect(originalCompiled.decideConnection({ ip: entry.host, port: entry.port, protocol: 'tcp' }).verdict).not.toBe('attack-blocked');
        }
      }),
      { numRuns: 300 },
    );
  });
});
