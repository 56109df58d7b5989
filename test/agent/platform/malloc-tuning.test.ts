// runwall's long-running processes keep glibc's malloc arenas few however many threads allocate.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mallocEnvironment } from '../../../src/agent/platform/index.js';
import { AGENT_DAEMON_MALLOC_ENV } from '../../../src/cli/memory-flags.js';

const HELPER = join(import.meta.dirname, '../../helpers/malloc-arenas.ts');

/** glibc's arenas in a fresh process before and after `threads` worker threads allocated (tuned first, or glibc's defaults). */
function arenas(mode: 'tuned' | 'default', threads: number): { before: number; after: number } {
  const env = { ...process.env };
  for (const name of Object.keys(mallocEnvironment())) delete env[name];
  const run = spawnSync(process.execPath, ['--import', 'tsx', HELPER, mode, String(threads)], { encoding: 'utf8', env, timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
  const [before = '', after = ''] = run.stderr.split('--- threads started\n');
  const count = (text: string): number => (text.match(/^Arena \d+:/gm) ?? []).length;
  return { before: count(before), after: count(after) };
}

describe('tuneMalloc', () => {
  it('new threads share the arenas there are instead of each making its own', () => {
    const plain = arenas('default', 6);
    expect(plain.after).toBeGreaterThanOrEqual(plain.before + 3);
    // The tsx loader's thread has made arenas before tuneMalloc runs (the built CLI has fewer): none are added after.
    const tuned = arenas('tuned', 6);
    expect(tuned.after).toBe(tuned.before);
  });

  it('names the same settings for a spawned process as glibc reads them from its environment (the agent daemon gets them)', () => {
    expect(mallocEnvironment()).toEqual({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' });
    expect(AGENT_DAEMON_MALLOC_ENV).toEqual(mallocEnvironment());
  });
});
