// The NFQUEUE reader against the real kernel, in a namespace made for this test: iptables queues
// loopback TCP to one port, the child (nfqueue-in-netns.ts) answers and makes the traffic.
import { resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NfqueueReader, createNetns, deleteNetns } from '../../../src/agent/platform/index.js';
import { runInNetns, testNetnsName } from '../../helpers/in-netns.js';
import type { ScenarioInput } from './nfqueue-in-netns.js';

const CHILD = resolve(import.meta.dirname, 'nfqueue-in-netns.ts');
let ns = '';
let count = 0;

function scenario<T>(name: ScenarioInput['scenario']): Promise<T> {
  return runInNetns<T>(ns, CHILD, { scenario: name, queue: 3 } satisfies ScenarioInput, { timeoutMs: 20_000 });
}

describe('NfqueueReader', () => {
  // A fresh namespace per case: each installs its own iptables rules.
  beforeEach(() => {
    ns = testNetnsName(`nfq${count++}`);
    createNetns(ns);
  });
  afterEach(() => deleteNetns(ns));

  it('sees each queued packet once, and a repeat verdict with a new mark lets the flow through', async () => {
    const { outcome, seen, errors } = await scenario<{ outcome: string; seen: Array<{ id: number; mark: number; port: number; syn: boolean; data: string }>; errors: unknown[] }>(
      'repeat-with-mark',
    );
    expect(errors).toEqual([]);
    expect(outcome).toBe('echo:hello');
    // Every packet went through the queue exactly once: the repeat with the mark matched the accept rule.
    expect(new Set(seen.map((p) => p.id)).size).toBe(seen.length);
    expect(seen[0]).toMatchObject({ syn: true, port: 4444, mark: 0 });
    expect(seen.some((p) => p.data === 'hello')).toBe(true);
  });

  it('a drop verdict fails the flow', async () => {
    const { outcome } = await scenario<{ outcome: string }>('drop');
    expect(outcome).toBe('timeout');
  });

  it('fails closed: with no reader bound, queued packets do not pass', async () => {
    const { outcome } = await scenario<{ outcome: string }>('no-reader');
    expect(outcome).toBe('timeout');
  });

  it('refuses a second reader on a held queue and says so', async () => {
    const { second } = await scenario<{ second: { code: string; message: string } | null }>('second-reader');
    expect(second?.code).toBe('RW_SETUP_FAILED');
    expect(second?.message).toMatch(/NFQUEUE 3 is held by another reader/);
  });

  it('refuses a queue number outside 0-65535 before touching the kernel', async () => {
    for (const queue of [-1, 65536, 2.5]) {
      await expect(NfqueueReader.open(queue, () => undefined, () => undefined)).rejects.toMatchObject({ code: 'RW_SETUP_FAILED' });
    }
  });
});
