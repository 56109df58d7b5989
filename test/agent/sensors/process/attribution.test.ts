// Joining network events to the calls that caused them: exact when one process did it, candidates when several could have.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SocketCallLog, attributeEvent, plainAddress, type GovernedNetns, type SocketCall } from '../../../../src/agent/sensors/process/attribution.js';
import { execMembership } from '../../../../src/agent/sensors/process/membership.js';
import { ProcessRegistry } from '../../../../src/agent/sensors/process/process-table.js';
import type { ProcessRef, UnsequencedEvent } from '../../../../src/protocol/index.js';

const T = Date.parse('2026-11-26T12:00:00.000Z');
const ref = (pid: number, exe: string): ProcessRef => ({ pid, exe, ancestry: [{ pid: 1, exe: '/usr/bin/dash', name: 'sh' }] });
const call = (pid: number, exe: string, address: string, port: number, timeMs: number, inJob = true, netns: number | null = null): SocketCall => ({
  pid,
  timeMs,
  address,
  port,
  inJob,
  netns,
  ref: ref(pid, exe),
});

function connection(destination: string, port: number | null, timeMs = T): UnsequencedEvent {
  return {
    kind: 'connection',
    time: new Date(timeMs).toISOString(),
    protocol: 'tcp',
    family: destination.includes(':') ? 6 : 4,
    destination,
    port,
    verdict: 'blocked',
    rule: { source: 'default-deny', explanation: 'x' },
    count: 1,
  };
}

function dnsEvent(timeMs: number, client = '100.64.0.2:5353'): UnsequencedEvent {
  return {
    kind: 'dns',
    time: new Date(timeMs).toISOString(),
    name: 'who-asked.test',
    qtype: 'A',
    transport: 'udp',
    client,
    verdict: 'blocked',
    rule: { source: 'default-deny', explanation: 'x' },
    rcode: 'NXDOMAIN',
    answers: [],
    admitted: [],
  };
}

const table = new ProcessRegistry({ membership: execMembership({ jobCgroup: 'j', launcherParent: 0, cgroupOf: () => null }) });

describe('attribution', () => {
  it('two processes blocked at the same moment, to different destinations: each event names its own', () => {
    const log = new SocketCallLog();
    log.add(call(10, '/usr/bin/curl', '198.51.100.11', 443, T - 2));
    log.add(call(11, '/usr/bin/wget', '198.51.100.12', 8443, T - 1));
    expect(attributeEvent(connection('198.51.100.11', 443), log, table)).toMatchObject({ process: { pid: 10, exe: '/usr/bin/curl' } });
    expect(attributeEvent(connection('198.51.100.12', 8443), log, table)).toMatchObject({ process: { pid: 11, exe: '/usr/bin/wget' } });
  });

  it('two processes to the same destination within the window: both are candidates, none is picked', () => {
    const log = new SocketCallLog();
    log.add(call(10, '/usr/bin/curl', '198.51.100.11', 443, T - 5));
    log.add(call(11, '/usr/bin/wget', '198.51.100.11', 443, T + 100));
    log.add(call(10, '/usr/bin/curl', '198.51.100.11', 443, T + 200));
    const event = attributeEvent(connection('198.51.100.11', 443), log, table);
    expect(event.process).toBeUndefined();
    expect(event.processCandidates?.map((p) => p.pid)).toEqual([11, 10]);
  });

  it('a caller right before the event wins over an earlier, unrelated one; an earlier one alone still counts', () => {
    const log = new SocketCallLog();
    log.add(call(20, '/usr/bin/dig', '100.64.0.1', 53, T - 900));
    log.add(call(21, '/usr/bin/python3', '100.64.0.1', 53, T - 3));
    expect(attributeEvent(dnsEvent(T), log, table).process?.pid).toBe(21);
    expect(attributeEvent(dnsEvent(T - 500), log, table).process?.pid).toBe(20);
  });

  it('calls outside the window, to another port, or by processes outside the job (when job ones exist) do not count', () => {
    const log = new SocketCallLog();
    log.add(call(9, '/usr/bin/old', '198.51.100.11', 443, T - 5_000));
    log.add(call(8, '/usr/bin/other', '198.51.100.11', 80, T));
    log.add(call(7, '/usr/bin/host-daemon', '198.51.100.11', 443, T, false));
    log.add(call(10, '/usr/bin/curl', '198.51.100.11', 443, T));
    expect(attributeEvent(connection('198.51.100.11', 443), log, table).process?.pid).toBe(10);
  });

  it('DNS: the process that sent to port 53 around the query; ICMP: the sender to the address', () => {
    const log = new SocketCallLog();
    log.add(call(12, '/usr/bin/curl', '100.64.0.1', 53, T - 3));
    log.add(call(13, '/usr/bin/ping', '198.51.100.9', 0, T - 1));
    expect(attributeEvent(dnsEvent(T), log, table).process?.exe).toBe('/usr/bin/curl');
    expect(attributeEvent({ ...connection('198.51.100.9', null), protocol: 'icmp' } as UnsequencedEvent, log, table).process?.exe).toBe('/usr/bin/ping');
  });

  describe('agent scope: calls from namespaces the event cannot have come from do not count', () => {
    const AGENT_NS = 4026531001;
    const OTHER_NS = 4026531002;
    const CONTAINER_NS = 4026531003;
    const governed: GovernedNetns = { inode: AGENT_NS, isOwnAddress: (address) => address === '127.0.0.1' || address === '::1' || address === '192.0.2.10' };
    const dnsFrom = (client: string): UnsequencedEvent => dnsEvent(T, client);
    const log = new SocketCallLog();
    // The same moment: a dig in the governed namespace, one in an unrelated namespace (its own 127.0.0.1), one in a container.
    log.add(call(30, '/usr/bin/dig', '127.0.0.153', 53, T - 4, false, AGENT_NS));
    log.add(call(31, '/usr/bin/dig', '127.0.0.1', 53, T - 3, false, OTHER_NS));
    log.add(call(32, '/usr/bin/python3', '127.0.0.11', 53, T - 2, false, CONTAINER_NS));

    it('a query from loopback or another own address: the caller inside the namespace', () => {
      expect(attributeEvent(dnsFrom('127.0.0.1:40000'), log, table, governed)).toMatchObject({ process: { pid: 30 } });
      expect(attributeEvent(dnsFrom('[::1]:40000'), log, table, governed)).toMatchObject({ process: { pid: 30 } });
      expect(attributeEvent(dnsFrom('[::ffff:127.0.0.1]:40000'), log, table, governed)).toMatchObject({ process: { pid: 30 } });
      expect(attributeEvent(dnsFrom('192.0.2.10:40000'), log, table, governed)).toMatchObject({ process: { pid: 30 } });
    });

    it('a query that came in from a bridge: callers outside the namespace only', () => {
      const event = attributeEvent(dnsFrom('172.17.0.2:40000'), log, table, governed);
      expect(event.processCandidates?.map((p) => p.pid)).toEqual([31, 32]);
      expect(attributeEvent(dnsFrom('[2001:db8::2]:40000'), log, table, governed).processCandidates?.map((p) => p.pid)).toEqual([31, 32]);
    });

    it('connections by their source address; a caller whose namespace was not read still counts', () => {
      const connections = new SocketCallLog();
      connections.add(call(40, '/usr/bin/curl', '198.51.100.14', 443, T - 2, false, AGENT_NS));
      connections.add(call(41, '/usr/bin/curl', '198.51.100.14', 443, T - 1, false, OTHER_NS));
      const from = (source: string) => ({ ...connection('198.51.100.14', 443), source }) as UnsequencedEvent;
      expect(attributeEvent(from('192.0.2.10'), connections, table, governed)).toMatchObject({ process: { pid: 40 } });
      expect(attributeEvent(from('172.17.0.2'), connections, table, governed)).toMatchObject({ process: { pid: 41 } });
      connections.add(call(42, '/usr/bin/wget', '198.51.100.14', 443, T, false, null));
      expect(attributeEvent(from('192.0.2.10'), connections, table, governed).processCandidates?.map((p) => p.pid)).toEqual([40, 42]);
      // exec scope (no governed namespace): every call counts, as before.
      expect(attributeEvent(from('192.0.2.10'), connections, table).processCandidates?.map((p) => p.pid)).toEqual([40, 41, 42]);
    });

  });

  it('an event that already names its process is left alone', () => {
    const log = new SocketCallLog();
    log.add(call(10, '/usr/bin/curl', '198.51.100.11', 443, T));
    const named = { ...connection('198.51.100.11', 443), process: ref(99, '/x') } as UnsequencedEvent;
    expect(attributeEvent(named, log, table)).toBe(named);
  });

  it('IPv4-mapped addresses from dual-stack sockets match the IPv4 the firewall logs', () => {
    expect(plainAddress('::ffff:198.51.100.11')).toBe('198.51.100.11');
    const log = new SocketCallLog();
    log.add(call(10, '/usr/bin/node', '::ffff:198.51.100.11', 443, T));
    expect(attributeEvent(connection('198.51.100.11', 443), log, table).process?.pid).toBe(10);
  });

  it('property: the log stays within its bounds however many calls come', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(5), fc.nat(3), fc.nat(200_000)), { maxLength: 300 }), (calls) => {
        const log = new SocketCallLog(50, 60_000);
        let now = T;
        for (const [pid, port, step] of calls) {
          now += step;
          log.add(call(pid, '/bin/x', '198.51.100.1', port, now));
        }
        expect(log.size).toBeLessThanOrEqual(50);
        const found = log.find({ address: '198.51.100.1', port: 0, fromMs: now - 60_000, toMs: now });
        expect(new Set(found.map((p) => p.pid)).size).toBe(found.length);
      }),
    );
  });

  it('property: a look-up finds exactly what a scan of every live call finds, whatever order the records came in', () => {
    const arbitraryCall = fc.record({
      pid: fc.integer({ min: 1, max: 6 }),
      port: fc.constantFrom(53, 443),
      host: fc.integer({ min: 1, max: 3 }),
      offsetMs: fc.integer({ min: -6_000, max: 6_000 }),
      netns: fc.option(fc.integer({ min: 1, max: 3 })),
    });
    const arbitraryQuery = fc.record({
      port: fc.constantFrom(53, 443),
      host: fc.option(fc.integer({ min: 1, max: 3 })),
      fromMs: fc.integer({ min: -8_000, max: 8_000 }),
      widthMs: fc.integer({ min: 0, max: 4_000 }),
      netns: fc.option(fc.record({ inode: fc.integer({ min: 1, max: 3 }), inside: fc.boolean() })),
    });
    fc.assert(
      fc.property(fc.array(arbitraryCall, { maxLength: 120 }), fc.array(arbitraryQuery, { maxLength: 10 }), fc.integer({ min: 5, max: 200 }), (calls, queries, maxEntries) => {
        // Arrival order is the array's; times wander back and forth, as late audit records do.
        const log = new SocketCallLog(maxEntries, 10 ** 9);
        // A process is in the job or not; pid 3 and 6 are outside it.
        const logged = calls.map((c) => call(c.pid, `/bin/p${c.pid}`, `198.51.100.${c.host}`, c.port, T + c.offsetMs, c.pid % 3 !== 0, c.netns));
        for (const c of logged) log.add(c);
        const live = logged.slice(-maxEntries);
        for (const q of queries) {
          const netns = q.netns === null ? undefined : q.netns.inside ? { inside: q.netns.inode } : { outside: q.netns.inode };
          const query = { address: q.host === null ? null : `198.51.100.${q.host}`, port: q.port, fromMs: T + q.fromMs, toMs: T + q.fromMs + q.widthMs, ...(netns ? { netns } : {}) };
          const fromWhere = (c: SocketCall): boolean => q.netns === null || c.netns === null || (c.netns === q.netns.inode) === q.netns.inside;
          const matching = live.filter(
            (c) => c.port === query.port && c.timeMs >= query.fromMs && c.timeMs <= query.toMs && (query.address === null || c.address === query.address) && fromWhere(c),
          );
          const preferred = matching.some((c) => c.inJob) ? matching.filter((c) => c.inJob) : matching;
          const expected = [...new Set(preferred.map((c) => c.pid))].sort((a, b) => a - b);
          expect(log.find(query).map((p) => p.pid).sort((a, b) => a - b)).toEqual(expected);
        }
      }),
    );
  });
});
