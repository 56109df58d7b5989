// The events spool gives back every event in order, from the file and, when the file fails, from memory, and says
// what went wrong; nothing is lost, and a file cut behind its back is reported, never read as half an event.
import { existsSync, mkdtempSync, statSync, symlinkSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventSpool } from '../../../src/agent/report/event-spool.js';
import type { RunEvent } from '../../../src/protocol/index.js';

const dir = mkdtempSync(join(tmpdir(), 'runwall-spool-'));

function event(seq: number): RunEvent {
  return { kind: 'agent', seq, time: '2026-11-26T12:00:00.000Z', action: 'error', code: 'RW_INTERNAL', message: `event ${seq}: ${'x'.repeat(seq % 300)}\n"quoted"` };
}

async function collect(lines: AsyncIterable<string>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const line of lines) out.push(JSON.parse(line) as RunEvent);
  return out;
}

describe('EventSpool', () => {
  it('gives back every event in order, and removes its file', async () => {
    const path = join(dir, 'order.spool');
    const spool = await EventSpool.open(path);
    const events = Array.from({ length: 5_000 }, (_, i) => event(i + 1));
    for (const e of events) spool.add(e);
    expect(spool.count).toBe(5_000);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await spool.settle()).toEqual([]);
    expect(await collect(spool.lines())).toEqual(events);
    await spool.remove();
    expect(existsSync(path)).toBe(false);
  });

  it('keeps the events in memory when the file cannot be created, and says so', async () => {
    const path = join(dir, 'missing', 'events.spool');
    const spool = await EventSpool.open(path);
    for (let seq = 1; seq <= 3; seq += 1) spool.add(event(seq));
    const problems = await spool.settle();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: 'RW_EVENTS_SPOOL_FAILED' });
    expect(problems[0]!.message).toContain('kept in memory');
    expect((await collect(spool.lines())).map((e) => e.seq)).toEqual([1, 2, 3]);
    await spool.remove();
  });

  it('moves to memory when writes fail (a full disk), in order after what reached the file', async () => {
    const path = join(dir, 'full.spool');
    // The spool opens /dev/full through a link: every write fails with ENOSPC; removing the spool removes the link only.
    symlinkSync('/dev/full', path);
    const spool = await EventSpool.open(path);
    const events = Array.from({ length: 2_000 }, (_, i) => event(i + 1));
    for (const e of events) spool.add(e);
    const problems = await spool.settle();
    expect(problems.map((p) => p.code)).toEqual(['RW_EVENTS_SPOOL_FAILED']);
    expect(problems[0]!.message).toMatch(/ENOSPC/);
    expect(await collect(spool.lines())).toEqual(events);
    await spool.remove();
    expect(existsSync('/dev/full')).toBe(true);
  });

  it('a file cut behind its back is reported before the report is written, and no half event is read', async () => {
    const path = join(dir, 'cut.spool');
    const spool = await EventSpool.open(path);
    const events = Array.from({ length: 2_000 }, (_, i) => event(i + 1));
    for (const e of events) spool.add(e);
    await spool.settle();
    const size = statSync(path).size;
    truncateSync(path, Math.floor(size / 2));
    const problems = await spool.settle();
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toContain(`${Math.floor(size / 2)} of the ${size} bytes`);
    const read = await collect(spool.lines());
    expect(read.length).toBeGreaterThan(0);
    expect(read.length).toBeLessThan(events.length);
    expect(read).toEqual(events.slice(0, read.length));
    await spool.remove();
  });

  it('takes no more events once removed', async () => {
    const path = join(dir, 'closed.spool');
    const spool = await EventSpool.open(path);
    spool.add(event(1));
    await spool.remove();
    spool.add(event(2));
    expect(spool.count).toBe(1);
    expect(existsSync(path)).toBe(false);
  });
});
