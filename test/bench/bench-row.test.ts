// Rows of `make bench`: ratios, goals, and rows handed over by another module checked at the edge.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { benchRow, goalStatus, goalText, parseBenchResult, parseBenchRows, ratioOf, type BenchGoal } from '../../bench/bench-row.js';

const positive = fc.double({ min: 1e-6, max: 1e9, noNaN: true });

describe('ratio and goal', () => {
  it('the ratio is value over baseline, and absent without a usable baseline', () => {
    fc.assert(
      fc.property(positive, positive, (value, baseline) => {
        expect(benchRow({ name: 'x', value, unit: 'ms', baseline }).ratio).toBeCloseTo(value / baseline, 9);
      }),
    );
    expect(ratioOf(5, undefined)).toBeUndefined();
    expect(ratioOf(5, 0)).toBeUndefined();
    expect(ratioOf(Number.NaN, 2)).toBeUndefined();
    expect(benchRow({ name: 'x', value: 1, unit: 'ms' })).not.toHaveProperty('ratio');
  });

  it('a ratio goal is met exactly when the ratio is on the right side of the limit', () => {
    fc.assert(
      fc.property(positive, positive, positive, fc.boolean(), (value, baseline, limit, atMost) => {
        const goal: BenchGoal = { on: 'ratio', bound: atMost ? 'at-most' : 'at-least', limit };
        const ratio = value / baseline;
        const expected = atMost ? ratio <= limit : ratio >= limit;
        expect(goalStatus(benchRow({ name: 'x', value, unit: 'µs', baseline, goal }))).toBe(expected ? 'met' : 'not met');
      }),
    );
  });

  it('a value goal looks at the value alone; a ratio goal without a baseline has no data', () => {
    expect(goalStatus(benchRow({ name: 'start', value: 280, unit: 'ms', goal: { on: 'value', bound: 'at-most', limit: 300 } }))).toBe('met');
    expect(goalStatus(benchRow({ name: 'start', value: 301, unit: 'ms', baseline: 1000, goal: { on: 'value', bound: 'at-most', limit: 300 } }))).toBe('not met');
    expect(goalStatus(benchRow({ name: 'qps', value: 10, unit: 'qps', goal: { on: 'ratio', bound: 'at-least', limit: 1 } }))).toBe('no data');
    expect(goalStatus(benchRow({ name: 'info', value: 1, unit: '' }))).toBe('no goal');
  });

  it('says the goal the way the issue does', () => {
    expect(goalText({ on: 'ratio', bound: 'at-most', limit: 1.5 }, 'µs')).toBe('≤ 1.5×');
    expect(goalText({ on: 'ratio', bound: 'at-least', limit: 1 }, 'qps')).toBe('≥ 1×');
    expect(goalText({ on: 'value', bound: 'at-most', limit: 300 }, 'ms')).toBe('≤ 300 ms');
    expect(goalText(undefined, 'ms')).toBe('');
  });
});

describe('rows from another module', () => {
  it('keeps valid rows, computing a missing ratio', () => {
    const rows = parseBenchRows(
      [
        { name: 'ingest p50', value: 12, unit: 'ms', baseline: 10 },
        { name: 'runs listed', value: 900, unit: 'req/s', ratio: 0.5, note: 'n', goal: { on: 'value', bound: 'at-least', limit: 500 } },
      ],
      'server bench',
    );
    expect(rows[0]).toEqual({ name: 'ingest p50', value: 12, unit: 'ms', baseline: 10, ratio: 1.2 });
    expect(rows[1]).toEqual({ name: 'runs listed', value: 900, unit: 'req/s', ratio: 0.5, note: 'n', goal: { on: 'value', bound: 'at-least', limit: 500 } });
    expect(Object.isFrozen(rows[0])).toBe(true);
  });

  it('refuses anything else, saying which row and field', () => {
    expect(() => parseBenchRows({}, 'server bench')).toThrow(/server bench: expected a list/);
    expect(() => parseBenchRows([{ name: 'a', value: '1', unit: 'ms' }], 's')).toThrow(/s row 0: value/);
    expect(() => parseBenchRows([{ name: '', value: 1, unit: 'ms' }], 's')).toThrow(/name/);
    expect(() => parseBenchRows([{ name: 'a', value: 1, unit: 'ms', baseline: 'x' }], 's')).toThrow(/baseline/);
    expect(() => parseBenchRows([{ name: 'a', value: 1, unit: 'ms', goal: { on: 'speed', bound: 'at-most', limit: 1 } }], 's')).toThrow(/goal.on/);
    expect(() => parseBenchRows([{ name: 'a', value: 1, unit: 'ms', goal: { on: 'value', bound: 'below', limit: 1 } }], 's')).toThrow(/goal.bound/);
  });

  it('takes a list or { rows }, as the parts return them', () => {
    const row = { name: 'a', value: 1, unit: 'ms' };
    expect(parseBenchResult([row], 'p')).toEqual([row]);
    expect(parseBenchResult({ rows: [row], extra: 1 }, 'p')).toEqual([row]);
    expect(() => parseBenchResult({ figures: [row] }, 'l7 bench')).toThrow(/l7 bench: expected a list/);
  });

  it('never lets a malformed row through without an error', () => {
    fc.assert(
      fc.property(fc.anything(), (item) => {
        try {
          const [row] = parseBenchRows([item], 's');
          expect(typeof row?.name).toBe('string');
          expect(typeof row?.value).toBe('number');
          expect(typeof row?.unit).toBe('string');
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
        }
      }),
    );
  });
});
