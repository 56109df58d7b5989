// Two `runwall exec` runs at once: audit tags each event with the key of the first rule that
// matched, so one run's execs and connects carry the other run's key. Each run must still see
// every exec of its own job (with argv), attribute its own connections, and nothing of the other's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../../../helpers/internet.js';
import { eventsOf, execInHost, type ExecResult } from '../../../helpers/runwall-cli.js';

const EXECS = 200;

describe('two runs at once', () => {
  let internet: Internet;
  let barrier: string;
  const marks = { a: `two-runs-a-${process.pid}`, b: `two-runs-b-${process.pid}` };
  const destinations = { a: '198.51.100.21', b: '198.51.100.22' };

  /** Waits (bounded) until the other run's job has started too, so both runs' audit rules are in place; then execs and connects. */
  const job = (mine: 'a' | 'b', theirs: 'a' | 'b'): string => `
    touch ${barrier}/${mine}
    n=0; while [ ! -e ${barrier}/${theirs} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done
    i=0; while [ $i -lt ${EXECS} ]; do /bin/true ${marks[mine]} $i; i=$((i+1)); done
    curl -s -m 2 http://${destinations[mine]}:443/ >/dev/null
    exit 0`;

  let a: ExecResult;
  let b: ExecResult;

  beforeAll(async () => {
    internet = await createInternet();
    barrier = mkdtempSync(join(tmpdir(), 'runwall-two-runs-'));
    [a, b] = await Promise.all([
      execInHost(internet, ['--egress-policy', 'block', '--allowed-endpoints', 'allowed.test:443'], job('a', 'b'), { timeoutMs: 90_000 }),
      execInHost(internet, ['--egress-policy', 'block', '--allowed-endpoints', 'allowed.test:443'], job('b', 'a'), { timeoutMs: 90_000 }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
    if (barrier) rmSync(barrier, { recursive: true, force: true });
  });

  for (const [mine, theirs] of [['a', 'b'], ['b', 'a']] as const) {
    it(`run ${mine} sees all ${EXECS} of its own execs with their argv, none of run ${theirs}'s, and names its own connection's process`, () => {
      const result = mine === 'a' ? a : b;
      expect(result.code).toBe(0);
      const execs = eventsOf(result.report!, 'process').filter((e) => e.action === 'exec');
      const own = new Set(execs.filter((e) => e.argv?.[1] === marks[mine]).map((e) => e.argv?.[2]));
      expect(own.size).toBe(EXECS);
      expect(execs.filter((e) => e.argv?.[1] === marks[theirs])).toEqual([]);
      const connection = eventsOf(result.report!, 'connection').find((e) => e.destination === destinations[mine]);
      expect(connection?.process).toMatchObject({ exe: '/usr/bin/curl' });
      expect(eventsOf(result.report!, 'connection').filter((e) => e.destination === destinations[theirs])).toEqual([]);
    });
  }
});
