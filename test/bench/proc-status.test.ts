// Peak and current RSS from /proc/PID/status.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProcMemory } from '../../bench/proc-status.js';

describe('process memory', () => {
  it("reads this process's own peak and current RSS, peak at least current", () => {
    const memory = parseProcMemory(readFileSync('/proc/self/status', 'utf8'));
    expect(memory).toBeDefined();
    expect(memory!.peakRssBytes).toBeGreaterThanOrEqual(memory!.rssBytes);
    expect(memory!.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('converts kB to bytes, wherever the lines are', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1e9 }), fc.nat({ max: 1e9 }), fc.boolean(), (hwm, rss, swap) => {
        const lines = ['Name:\tnode', `VmHWM:\t${String(hwm).padStart(8)} kB`, `VmRSS:\t${String(rss).padStart(8)} kB`, 'Threads:\t11'];
        const text = (swap ? [...lines].reverse() : lines).join('\n');
        expect(parseProcMemory(text)).toEqual({ peakRssBytes: hwm * 1024, rssBytes: rss * 1024 });
      }),
    );
  });

  it('has nothing for a process without memory (a zombie, a kernel thread)', () => {
    expect(parseProcMemory('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBeUndefined();
  });
});
