// RUNWALL_BENCH_ONLY: choosing parts of `make bench`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALL_SECTIONS, parseSectionList } from '../../bench/sections.js';

describe('choosing bench sections', () => {
  it('runs everything when nothing is chosen', () => {
    expect([...parseSectionList(undefined)]).toEqual(ALL_SECTIONS);
    expect([...parseSectionList('  ')]).toEqual(ALL_SECTIONS);
  });

  it('takes any comma-separated subset, spaces allowed', () => {
    fc.assert(
      fc.property(fc.subarray([...ALL_SECTIONS], { minLength: 1 }), (chosen) => {
        expect(parseSectionList(chosen.join(' , '))).toEqual(new Set(chosen));
      }),
    );
  });

  it('refuses a name it does not know, naming the ones it does', () => {
    expect(() => parseSectionList('dns,sever')).toThrow(/unknown section 'sever' \(known: dns, agent-start, exec-start/);
    expect(() => parseSectionList('dns,')).toThrow(/unknown section ''/);
  });
});
