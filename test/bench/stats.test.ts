// Medians and percentiles of bench samples.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { median, percentile } from '../../bench/stats.js';

const samples = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 });

describe('percentile', () => {
  it('is a sample, between the smallest and the largest, and never falls as p rises', () => {
    fc.assert(
      fc.property(samples, fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true }), (values, p, q) => {
        const low = percentile(values, Math.min(p, q));
        const high = percentile(values, Math.max(p, q));
        expect(values).toContain(low);
        expect(low).toBeLessThanOrEqual(high);
        expect(percentile(values, 0)).toBe(Math.min(...values));
        expect(percentile(values, 100)).toBe(Math.max(...values));
      }),
    );
  });

  it('uses the nearest rank', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile([3, 1, 2], 50)).toBe(2);
  });

  it('refuses an empty sample and a p outside 0..100', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([Number.NaN], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('median', () => {
  it('has as many samples at or below it as at or above it', () => {
    fc.assert(
      fc.property(samples, (values) => {
        const m = median(values);
        expect(values.filter((v) => v <= m).length * 2).toBeGreaterThanOrEqual(values.length);
        expect(values.filter((v) => v >= m).length * 2).toBeGreaterThanOrEqual(values.length);
      }),
    );
  });

  it('averages the middle two of an even count, whatever the order', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 9])).toBe(5);
  });
});
