// The printed table: aligned columns, the goal and whether it was met, a summary of the goals.
import { describe, expect, it } from 'vitest';
import { benchRow } from '../../bench/bench-row.js';
import { formatNumber, formatTable, goalSummary } from '../../bench/table.js';

const ROWS = [
  benchRow({ name: 'dns p50, proxy vs direct', value: 210, unit: 'µs', baseline: 150, goal: { on: 'ratio', bound: 'at-most', limit: 1.5 } }),
  benchRow({ name: 'dns qps, proxy vs dnsmasq', value: 6908.4, unit: 'qps', baseline: 16229, goal: { on: 'ratio', bound: 'at-least', limit: 1 }, note: 'upstream-bound' }),
  benchRow({ name: 'agent idle RSS', value: 72.18, unit: 'MB' }),
];

describe('bench table', () => {
  it('puts every figure in its column, with the ratio, the goal and the verdict', () => {
    const lines = formatTable(ROWS).split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^measurement\s+value\s+baseline\s+ratio\s+goal\s+result\s+note$/);
    expect(lines[2]).toMatch(/^dns p50, proxy vs direct\s+210 µs\s+150 µs\s+1\.40×\s+≤ 1\.5×\s+met$/);
    expect(lines[3]).toMatch(/6,908 qps\s+16,229 qps\s+0\.43×\s+≥ 1×\s+not met\s+upstream-bound$/);
    expect(lines[4]).toMatch(/^agent idle RSS\s+72\.2 MB$/);
    // Right-aligned numbers: the value column ends at the same place on every line.
    const valueEnd = (line: string | undefined, value: string): number => (line ?? '').indexOf(value) + value.length;
    expect(valueEnd(lines[2], '210 µs')).toBe(valueEnd(lines[4], '72.2 MB'));
    expect(valueEnd(lines[3], '6,908 qps')).toBe(valueEnd(lines[4], '72.2 MB'));
  });

  it('formats numbers to three significant digits, whole above a hundred', () => {
    expect(formatNumber(0.000123456)).toBe('0.000123');
    expect(formatNumber(1.23456)).toBe('1.23');
    expect(formatNumber(99.94)).toBe('99.9');
    expect(formatNumber(1234567.8)).toBe('1,234,568');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(Number.NaN)).toBe('—');
  });

  it('shows a section that could not be measured as a dash with its reason', () => {
    const [, , line] = formatTable([benchRow({ name: 'dns: could not be measured', value: Number.NaN, unit: '', note: 'dnsperf: not found' })]).split('\n');
    expect(line).toMatch(/^dns: could not be measured\s+—\s+dnsperf: not found$/);
  });

  it('counts the goals met and missed', () => {
    expect(goalSummary(ROWS)).toBe('goals: 1 met, 1 not met');
    expect(goalSummary([benchRow({ name: 'x', value: 1, unit: 'qps', goal: { on: 'ratio', bound: 'at-least', limit: 1 } })])).toBe(
      'goals: 0 met, 0 not met, 1 without data',
    );
  });
});
