// Reading dnsperf 2.10's output: the statistics block and -v per-query lines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DnsperfOutputError, parseDnsperfLatencies, parseDnsperfSummary } from '../../bench/dnsperf-output.js';

/** Captured from dnsperf 2.10.0 on this machine (-v, a short run). */
const VERBOSE_RUN = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 198.51.100.53 -d q.txt -n 1 -q 1 -v -l 2
[Status] Sending queries (to 198.51.100.53:53)
[Status] Started at: Thu Nov 26 19:44:30 2026
[Status] Stopping after 2.000000 seconds or 1 run through file
> NOERROR n0.gen.test A 0.002102
> NOERROR n1.gen.test A 0.000991
> NXDOMAIN n2.denied.test A 0.000085
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         315
  Queries completed:    315 (100.00%)
  Queries lost:         0 (0.00%)

  Response codes:       NOERROR 300 (95.24%), NXDOMAIN 15 (4.76%)
  Average packet size:  request 30, response 59
  Run time (s):         2.000139
  Queries per second:   157.489055

  Average Latency (s):  0.000232 (min 0.000082, max 0.003037)
  Latency StdDev (s):   0.000302
`;

describe('dnsperf statistics', () => {
  it('reads counts, run time, rate and response codes', () => {
    expect(parseDnsperfSummary(VERBOSE_RUN)).toEqual({
      sent: 315,
      completed: 315,
      lost: 0,
      runTimeSeconds: 2.000139,
      queriesPerSecond: 157.489055,
      responseCodes: { NOERROR: 300, NXDOMAIN: 15 },
    });
  });

  it('refuses output without the figures (dnsperf failed to start)', () => {
    expect(() => parseDnsperfSummary('Error: invalid server address\n')).toThrow(DnsperfOutputError);
    expect(() => parseDnsperfSummary(VERBOSE_RUN.replace(/Queries per second.*\n/, ''))).toThrow(/Queries per second/);
  });

  it('reads any figures dnsperf may print', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), fc.double({ min: 0, max: 1e6, noNaN: true }), (sent, completed, lost, qps) => {
        const text = `  Queries sent:         ${sent}\n  Queries completed:    ${completed} (1.00%)\n  Queries lost:         ${lost} (0.00%)\n  Run time (s):         1.5\n  Queries per second:   ${qps.toFixed(6)}\n`;
        const summary = parseDnsperfSummary(text);
        expect([summary.sent, summary.completed, summary.lost]).toEqual([sent, completed, lost]);
        expect(summary.queriesPerSecond).toBeCloseTo(qps, 5);
        expect(summary.responseCodes).toEqual({});
      }),
    );
  });
});

describe('dnsperf -v lines', () => {
  it('gives the latency of each answered query, in order', () => {
    expect(parseDnsperfLatencies(VERBOSE_RUN)).toEqual([0.002102, 0.000991, 0.000085]);
  });

  it('takes exactly the per-query lines out of any mix of lines', () => {
    const query = fc.record({
      rcode: fc.constantFrom('NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED'),
      name: fc.stringMatching(/^[a-z0-9.-]{1,30}$/),
      type: fc.constantFrom('A', 'AAAA', 'TXT'),
      latency: fc.integer({ min: 0, max: 9_999_999 }),
    });
    const noise = fc.constantFrom('[Status] Sending queries', '', 'Statistics:', '> T n1.gen.test A', '[Timeout] Query timed out: msg id 4');
    fc.assert(
      fc.property(fc.array(fc.oneof(query, noise), { maxLength: 50 }), (lines) => {
        const text = lines
          .map((line) => (typeof line === 'string' ? line : `> ${line.rcode} ${line.name} ${line.type} ${(line.latency / 1e6).toFixed(6)}`))
          .join('\n');
        const expected = lines.flatMap((line) => (typeof line === 'string' ? [] : [line.latency / 1e6]));
        const parsed = parseDnsperfLatencies(text);
        expect(parsed).toHaveLength(expected.length);
        parsed.forEach((latency, i) => expect(latency).toBeCloseTo(expected[i] as number, 9));
      }),
    );
  });
});
