import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { summarizeEvents } from '../../src/policy/index.js';
import { isDeepFrozen } from './helpers.js';
import { connection, detection, dns, http, step } from './events.js';

const curl = { pid: 10, exe: '/usr/bin/curl' };
const node = { pid: 11, exe: '/usr/bin/node' };

describe('summarizeEvents', () => {
  it('one destination per (name-or-address, port, protocol, verdict), with addresses and processes', () => {
    const summary = summarizeEvents([
      dns({ name: 'registry.test', verdict: 'allowed', answers: ['198.51.100.10'] }),
      connection({ destination: '198.51.100.10', port: 443, verdict: 'allowed', name: 'registry.test', process: curl }),
      connection({ destination: '198.51.100.11', port: 443, verdict: 'allowed', name: 'Registry.Test.', process: node, count: 3 }),
      connection({ destination: '203.0.113.66', port: 443, verdict: 'blocked', process: { pid: 12 } }),
      http({ host: 'registry.test:443', destination: '198.51.100.10', port: 443, verdict: 'allowed' }),
    ]);
    expect(summary.destinations).toEqual([
      { name: '203.0.113.66', addresses: ['203.0.113.66'], port: 443, protocol: 'tcp', count: 1, verdict: 'blocked', processes: ['pid:12'], chains: ['pid:12'] },
      {
        name: 'registry.test',
        addresses: ['198.51.100.10', '198.51.100.11'],
        port: 443,
        protocol: 'tcp',
        count: 5,
        verdict: 'allowed',
        processes: ['/usr/bin/curl', '/usr/bin/node'],
        chains: ['curl', 'node'],
      },
    ]);
    expect(isDeepFrozen(summary)).toBe(true);
  });

  it('a DNS name without any connection gets its own entry, with the answer addresses', () => {
    const summary = summarizeEvents([
      dns({ name: 'only-dns.test', verdict: 'audit', answers: ['198.51.100.20', '2001:db8::20'] }),
      dns({ name: 'only-dns.test', verdict: 'audit', answers: ['198.51.100.20'] }),
      dns({ name: 'evil.test', verdict: 'attack-blocked', rcode: 'NXDOMAIN' }),
    ]);
    expect(summary.destinations).toEqual([
      { name: 'evil.test', addresses: [], port: null, protocol: 'dns', count: 1, verdict: 'attack-blocked', processes: [], chains: [] },
      { name: 'only-dns.test', addresses: ['198.51.100.20', '2001:db8::20'], port: null, protocol: 'dns', count: 2, verdict: 'audit', processes: [], chains: [] },
    ]);
  });

  it('names the tool chains that reached each destination, root first; ambiguous attributions are marked', () => {
    const npmCurl = { pid: 40, exe: '/usr/bin/curl', name: 'curl', ancestry: [{ pid: 39, exe: '/usr/bin/dash', name: 'sh' }, { pid: 38, exe: '/usr/bin/node', name: 'node' }, { pid: 37, exe: '/usr/bin/node', name: 'npm' }] };
    const wget = { pid: 41, exe: '/usr/bin/wget', ancestry: [{ pid: 36, exe: '/usr/bin/dash', name: 'sh' }] };
    const summary = summarizeEvents([
      connection({ destination: '198.51.100.11', port: 443, verdict: 'blocked', process: npmCurl }),
      connection({ destination: '198.51.100.11', port: 443, verdict: 'blocked', process: npmCurl, count: 2 }),
      { ...connection({ destination: '198.51.100.12', port: 80, verdict: 'blocked' }), processCandidates: [npmCurl, wget] },
    ]);
    expect(summary.destinations.map((d) => [d.name, d.chains])).toEqual([
      ['198.51.100.11', ['npm → node → sh → curl']],
      ['198.51.100.12', ['npm → node → sh → curl (ambiguous)', 'sh → wget (ambiguous)']],
    ]);
  });

  it('counts verdicts over all events (a folded connection counts `count` times) and detections', () => {
    const summary = summarizeEvents([
      step(),
      dns({ name: 'a.test', verdict: 'allowed' }),
      connection({ destination: '198.51.100.1', port: 443, verdict: 'blocked', count: 4 }),
      connection({ destination: '198.51.100.2', port: 53, protocol: 'udp', verdict: 'audit' }),
      http({ host: 'a.test', destination: '198.51.100.3', port: 443, verdict: 'allowed' }),
      detection(),
      detection(),
    ]);
    expect(summary.counts).toEqual({ events: 7, allowed: 2, blocked: 4, attackBlocked: 0, audit: 1, detections: 2 });
    expect(summary.verdict).toBe('blocked');
  });

  it('the run verdict is the worst one: attack-blocked > blocked > audit > allowed', () => {
    const a = dns({ name: 'a.test', verdict: 'allowed' });
    const u = dns({ name: 'u.test', verdict: 'audit' });
    const b = dns({ name: 'b.test', verdict: 'blocked' });
    const x = dns({ name: 'x.test', verdict: 'attack-blocked' });
    expect(summarizeEvents([]).verdict).toBe('allowed');
    expect(summarizeEvents([a]).verdict).toBe('allowed');
    expect(summarizeEvents([a, u]).verdict).toBe('audit');
    expect(summarizeEvents([u, b, a]).verdict).toBe('blocked');
    expect(summarizeEvents([x, b, u, a]).verdict).toBe('attack-blocked');
  });

  it('sorts worst verdict first, then by name, and shows IPv4-mapped addresses as IPv4', () => {
    const summary = summarizeEvents([
      connection({ destination: '::ffff:198.51.100.9', port: 443, verdict: 'allowed' }),
      connection({ destination: '203.0.113.1', port: 443, verdict: 'audit', name: 'b.test' }),
      connection({ destination: '203.0.113.2', port: 443, verdict: 'audit', name: 'a.test' }),
      connection({ destination: '203.0.113.3', port: 443, verdict: 'attack-blocked', name: 'z.test' }),
      connection({ destination: '203.0.113.4', port: 443, verdict: 'allowed', name: 'b.test' }),
    ]);
    expect(summary.destinations.map((d) => `${d.verdict} ${d.name}`)).toEqual([
      'attack-blocked z.test',
      'audit a.test',
      'audit b.test',
      'allowed 198.51.100.9',
      'allowed b.test',
    ]);
  });

  it('a folded http event (200 identical TLS flows) counts as many times as it folded', () => {
    const folded = { ...http({ host: 'www.allowed.test', destination: '198.51.100.12', port: 443, verdict: 'allowed' }), count: 200 };
    const fronted = { ...http({ host: 'evil.test', destination: '198.51.100.10', port: 443, verdict: 'blocked' }), count: 2 };
    const summary = summarizeEvents([folded, fronted]);
    expect(summary.counts).toMatchObject({ allowed: 200, blocked: 2 });
    expect(summary.destinations.map((d) => [d.name, d.count])).toEqual([
      ['evil.test', 2],
      ['www.allowed.test', 200],
    ]);
  });

  it('a folded dns event (499 repeats of one query) counts as many times as it folded', () => {
    const first = dns({ name: 'only-dns.test', verdict: 'allowed', answers: ['198.51.100.20'] });
    const repeats = { ...dns({ name: 'only-dns.test', verdict: 'allowed', answers: ['198.51.100.20'] }), count: 499 };
    const refused = { ...dns({ name: 'evil.test', verdict: 'blocked', rcode: 'NXDOMAIN' }), count: 7 };
    const summary = summarizeEvents([first, repeats, refused]);
    expect(summary.counts).toMatchObject({ events: 3, allowed: 500, blocked: 7 });
    expect(summary.destinations.map((d) => [d.name, d.protocol, d.count])).toEqual([
      ['evil.test', 'dns', 7],
      ['only-dns.test', 'dns', 500],
    ]);
  });

  it('a name a connection reaches has no DNS-only entry, whether its DNS events came before or after the connection', () => {
    const query = () => dns({ name: 'registry.test', verdict: 'allowed', answers: ['198.51.100.10'] });
    const connect = connection({ destination: '198.51.100.10', port: 443, verdict: 'allowed', name: 'registry.test' });
    for (const events of [[query(), connect], [connect, query()], [query(), connect, query()]]) {
      const summary = summarizeEvents(events);
      expect(summary.destinations.map((d) => [d.name, d.protocol])).toEqual([['registry.test', 'tcp']]);
      expect(summary.counts.allowed).toBe(events.length);
    }
  });

  it('a destination reached at many addresses lists each of them once, sorted', () => {
    const addresses = Array.from({ length: 40 }, (_, i) => `198.51.100.${100 - i}`);
    const events = [...addresses, ...addresses].map((destination) => connection({ destination, port: 443, verdict: 'allowed', name: 'cdn.test' }));
    const [destination] = summarizeEvents(events).destinations;
    expect(destination?.addresses).toEqual([...addresses].sort());
    expect(destination?.count).toBe(80);
  });

  it('property: the summary does not depend on the order of the events', () => {
    const name = fc.constantFrom('a.test', 'b.test', 'c.test');
    const address = fc.constantFrom('198.51.100.1', '198.51.100.2', '2001:db8::1');
    const verdict = fc.constantFrom<'allowed' | 'blocked' | 'audit'>('allowed', 'blocked', 'audit');
    const process = fc.option(fc.constantFrom({ pid: 1, exe: '/usr/bin/curl' }, { pid: 2, exe: '/usr/bin/wget' }), { nil: undefined });
    const event = fc.oneof(
      fc.record({ name, verdict, answers: fc.array(address, { maxLength: 2 }), process }).map((f) => dns({ name: f.name, verdict: f.verdict, answers: f.answers, ...(f.process ? { process: f.process } : {}) })),
      fc.record({ name: fc.option(name, { nil: undefined }), destination: address, verdict, process }).map((f) =>
        connection({ destination: f.destination, port: 443, verdict: f.verdict, ...(f.name ? { name: f.name } : {}), ...(f.process ? { process: f.process } : {}) }),
      ),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), fc.integer(), (events, seed) => {
        const shuffled = [...events].sort((a, b) => ((a.seq * 7919 + seed) % 101) - ((b.seq * 7919 + seed) % 101));
        expect(summarizeEvents(shuffled)).toEqual(summarizeEvents(events));
      }),
    );
  });
});
