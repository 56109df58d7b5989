// Events held for attribution come out in order, not before their time, and all of them at flush.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeldEvents } from '../../../src/agent/engine/held-events.js';

describe('HeldEvents', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('releases each event after the hold, in the order added, and everything at flush', () => {
    const out: number[] = [];
    const held = new HeldEvents<number>(200, (n) => out.push(n));
    for (let i = 0; i < 5_000; i++) held.add(i);
    vi.advanceTimersByTime(100);
    for (let i = 5_000; i < 6_000; i++) held.add(i);
    vi.advanceTimersByTime(99);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out).toHaveLength(5_000);
    held.add(6_000);
    held.flush();
    expect(out).toEqual(Array.from({ length: 6_001 }, (_, i) => i));
  });

  it('passes events straight through when the hold is 0', () => {
    const out: string[] = [];
    new HeldEvents<string>(0, (e) => out.push(e)).add('now');
    expect(out).toEqual(['now']);
  });
});
