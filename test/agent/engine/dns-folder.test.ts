// Repeated DNS exchanges fold into a few events: the first goes out at once, the repeats of a window as one event
// with a count; different questions, verdicts or clients never fold together, and nothing is lost at stop.
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientAddress } from '../../../src/agent/dns/index.js';
import { DnsFolder, dnsFoldKey, type DnsDraft } from '../../../src/agent/engine/dns-folder.js';

function exchange(fields: Partial<DnsDraft> = {}): DnsDraft {
  return {
    kind: 'dns',
    time: '2026-11-26T12:00:00.000Z',
    name: 'allowed.test',
    qtype: 'A',
    transport: 'udp',
    client: '100.64.0.2:40000',
    verdict: 'allowed',
    rule: { source: 'allowed-endpoints', entry: 'allowed.test:443', explanation: 'allowed' },
    rcode: 'NOERROR',
    answers: [{ name: 'allowed.test', type: 'A', ttl: 60, data: '198.51.100.10' }],
    admitted: ['198.51.100.10:443'],
    ...fields,
  };
}

describe('clientAddress', () => {
  it('drops the port of v4 and bracketed v6 clients', () => {
    expect(clientAddress('100.64.0.2:40000')).toBe('100.64.0.2');
    expect(clientAddress('[fd00::2]:53')).toBe('[fd00::2]');
    expect(clientAddress('fd00::2')).toBe('fd00::2');
  });
});

describe('DnsFolder', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('emits the first exchange at once and its repeats in the window as one event with a count', () => {
    const out: DnsDraft[] = [];
    const folder = new DnsFolder(2000, (event) => out.push(event));
    folder.add(exchange());
    expect(out).toHaveLength(1);
    expect(out[0]!.count).toBeUndefined();
    for (let port = 40_001; port < 40_500; port += 1) folder.add(exchange({ client: `100.64.0.2:${port}`, answers: [], admitted: [] }));
    expect(out).toHaveLength(1);
    vi.advanceTimersByTime(2000);
    expect(out).toHaveLength(2);
    expect(out[1]).toMatchObject({ name: 'allowed.test', qtype: 'A', count: 499, client: '100.64.0.2:40001' });
    // The next one after the window is prompt again.
    folder.add(exchange());
    expect(out).toHaveLength(3);
  });

  it('keeps apart what differs: name, qtype, transport, verdict, rcode, client address', () => {
    const out: DnsDraft[] = [];
    const folder = new DnsFolder(2000, (event) => out.push(event));
    folder.add(exchange());
    folder.add(exchange({ name: 'other.test' }));
    folder.add(exchange({ qtype: 'AAAA' }));
    folder.add(exchange({ transport: 'tcp' }));
    folder.add(exchange({ verdict: 'blocked' }));
    folder.add(exchange({ rcode: 'SERVFAIL' }));
    folder.add(exchange({ client: '100.64.0.3:40000' }));
    expect(out).toHaveLength(7);
  });

  it('flush emits the pending repeats (at stop)', () => {
    const out: DnsDraft[] = [];
    const folder = new DnsFolder(2000, (event) => out.push(event));
    folder.add(exchange());
    folder.add(exchange());
    folder.add(exchange());
    folder.flush();
    expect(out.map((event) => event.count ?? 1)).toEqual([1, 2]);
    vi.advanceTimersByTime(5000);
    expect(out).toHaveLength(2);
  });

  it('each window closes at its own end, in the order they opened', () => {
    const out: DnsDraft[] = [];
    const folder = new DnsFolder(2000, (event) => out.push(event));
    folder.add(exchange({ name: 'a.test' }));
    vi.advanceTimersByTime(1000);
    folder.add(exchange({ name: 'b.test' }));
    folder.add(exchange({ name: 'a.test' }));
    folder.add(exchange({ name: 'b.test' }));
    folder.add(exchange({ name: 'b.test' }));
    expect(out.map((event) => event.name)).toEqual(['a.test', 'b.test']);
    vi.advanceTimersByTime(1000);
    expect(out.slice(2).map((event) => [event.name, event.count])).toEqual([['a.test', 1]]);
    vi.advanceTimersByTime(999);
    expect(out).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(out.slice(3).map((event) => [event.name, event.count])).toEqual([['b.test', 2]]);
    // Nothing is left open: no timer keeps running.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never loses or invents an exchange: counts always sum to what came in', () => {
    const names = ['a.test', 'b.test', 'c.test'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: fc.constantFrom(...names), verdict: fc.constantFrom('allowed' as const, 'blocked' as const), waitMs: fc.integer({ min: 0, max: 1500 }) }), {
          maxLength: 200,
        }),
        (steps) => {
          const out: DnsDraft[] = [];
          const folder = new DnsFolder(1000, (event) => out.push(event));
          for (const step of steps) {
            vi.advanceTimersByTime(step.waitMs);
            folder.add(exchange({ name: step.name, verdict: step.verdict }));
          }
          folder.flush();
          const total = out.reduce((sum, event) => sum + (event.count ?? 1), 0);
          expect(total).toBe(steps.length);
          for (const name of names) {
            const expected = steps.filter((step) => step.name === name).length;
            expect(out.filter((event) => event.name === name).reduce((sum, event) => sum + (event.count ?? 1), 0)).toBe(expected);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('property: two exchanges share a fold key exactly when name, type, transport, verdict, rcode, client address, rule and error agree', () => {
    // Few values, some made to confuse a separator-joined key, so equal and unequal pairs both come up.
    const text = fc.oneof(fc.constantFrom('a', 'a b', '1:a b', 'b 1:a', ''), fc.string({ unit: 'binary', maxLength: 12 }));
    const draft = fc.record({
      name: text,
      qtype: fc.constantFrom('A', 'AAAA', 'TXT'),
      transport: fc.constantFrom('udp' as const, 'tcp' as const),
      verdict: fc.constantFrom('allowed' as const, 'blocked' as const),
      rcode: fc.constantFrom('NOERROR', 'NXDOMAIN'),
      client: fc.constantFrom('100.64.0.2:1', '100.64.0.2:2', '100.64.0.3:1'),
      entry: fc.option(text, { nil: undefined }),
      error: fc.option(fc.constantFrom('RW_INTERNAL', 'RW_DNS_UPSTREAM_FAILED'), { nil: undefined }),
    });
    type Drawn = typeof draft extends fc.Arbitrary<infer T> ? T : never;
    const build = (d: Drawn): DnsDraft =>
      exchange({
        name: d.name,
        qtype: d.qtype,
        transport: d.transport,
        verdict: d.verdict,
        rcode: d.rcode,
        client: d.client,
        rule: { source: 'allowed-endpoints', ...(d.entry !== undefined ? { entry: d.entry } : {}), explanation: 'x' },
        ...(d.error !== undefined ? { error: { code: d.error, message: 'm' } } : {}),
      });
    fc.assert(
      fc.property(draft, draft, (a, b) => {
        const same =
          a.name === b.name &&
          a.qtype === b.qtype &&
          a.transport === b.transport &&
          a.verdict === b.verdict &&
          a.rcode === b.rcode &&
          clientAddress(a.client) === clientAddress(b.client) &&
          (a.entry ?? '') === (b.entry ?? '') &&
          (a.error ?? '') === (b.error ?? '');
        expect(dnsFoldKey(build(a)) === dnsFoldKey(build(b))).toBe(same);
      }),
      { numRuns: 500 },
    );
  });
});
