import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SLOTS, sandboxPlan } from '../../../src/agent/sandbox/sandbox-plan.js';

const runId = fc.stringMatching(/^[0-9a-f]{8}$/);

describe('sandbox plan', () => {
  it('gives every slot its own /30 and /64 inside the sandbox ranges, and names that fit an interface', () => {
    fc.assert(
      fc.property(runId, fc.integer({ min: 0, max: MAX_SLOTS - 1 }), fc.integer({ min: 0, max: MAX_SLOTS - 1 }), (id, a, b) => {
        const pa = sandboxPlan(id, a);
        const pb = sandboxPlan(id, b);
        expect(pa.hostInterface.length).toBeLessThanOrEqual(15);
        expect(pa.jobInterface.length).toBeLessThanOrEqual(15);
        expect(pa.net4).toMatch(/^100\.64\.\d+\.\d+\/30$/);
        if (a !== b) {
          expect(pa.net4).not.toBe(pb.net4);
          expect(pa.net6).not.toBe(pb.net6);
          expect(pa.nflogGroup).not.toBe(pb.nflogGroup);
        }
      }),
    );
  });

  it('refuses slots and run ids it cannot turn into safe names', () => {
    expect(() => sandboxPlan('abc', 0)).toThrow(RangeError);
    expect(() => sandboxPlan('0000aaaa', MAX_SLOTS)).toThrow(RangeError);
    expect(() => sandboxPlan('0000aaa"', 1)).toThrow(RangeError);
  });
});
