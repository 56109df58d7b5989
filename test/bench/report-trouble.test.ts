// Spotting, in a run report, that runwall got in the way of a job that only reaches allowed names.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reportTrouble } from '../../bench/report-trouble.js';

const allowedDns = { kind: 'dns', name: 'n1.gen.test', rcode: 'NOERROR', verdict: 'allowed' };
const allowedFlow = { kind: 'connection', destination: '198.51.100.51', port: 443, verdict: 'allowed' };

describe('trouble in a run report', () => {
  it('is nothing when every flow was allowed and nothing went wrong', () => {
    expect(reportTrouble({ enforcement: { problems: [] }, events: [allowedDns, allowedFlow, { kind: 'agent', action: 'stop' }] })).toBeUndefined();
  });

  it('names the problems and the first flow that was not allowed', () => {
    const report = {
      enforcement: { problems: [{ code: 'RW_DNS_UPSTREAM_FAILED', message: 'upstream timed out', time: 't' }] },
      events: [allowedDns, { kind: 'dns', name: 'n9.gen.test', rcode: 'SERVFAIL', verdict: 'blocked' }, { ...allowedFlow, destination: '198.51.100.60', verdict: 'blocked' }],
    };
    expect(reportTrouble(report)).toBe('1 problem (RW_DNS_UPSTREAM_FAILED: upstream timed out), 2 not allowed (first: dns n9.gen.test SERVFAIL blocked)');
    expect(reportTrouble({ events: [{ ...allowedFlow, verdict: 'audit' }] })).toBe('1 not allowed (first: 198.51.100.51:443 audit)');
  });

  it('says so when there is no report at all', () => {
    expect(reportTrouble(null)).toBe('no run report');
  });

  it('never throws and stays short, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 10, max: 300 }), (report, limit) => {
        const text = reportTrouble(report, limit);
        if (text !== undefined) expect(text.length).toBeLessThanOrEqual(limit);
      }),
    );
  });
});
