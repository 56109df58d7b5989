// The L7 check's worker thread can be started before its policy is known (`runwall exec`
// preloads one): it is adopted once, and it refuses to work before it is configured.
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { adoptL7WorkerThread, prestartL7Worker } from '../../../src/agent/l7/l7-worker-thread.js';

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((worker) => worker.terminate()));
});

function firstMessage(worker: Worker): Promise<{ type: string; message?: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message from the worker within 20 s')), 20_000);
    worker.once('message', (message: { type: string; message?: string }) => {
      clearTimeout(timer);
      resolve(message);
    });
  });
}

describe('the L7 worker thread', () => {
  it('adopts the prestarted thread once; the next adoption starts a new one', () => {
    prestartL7Worker();
    const slot = (globalThis as Record<symbol, { worker: Worker } | undefined>)[Symbol.for('runwall.l7.prestarted-worker')];
    expect(slot).toBeDefined();
    const first = adoptL7WorkerThread();
    const second = adoptL7WorkerThread();
    started.push(first, second);
    expect(first).toBe(slot?.worker);
    expect(second).not.toBe(first);
  });

  it('says it failed when told to work before it was configured', async () => {
    const worker = adoptL7WorkerThread();
    started.push(worker);
    const answer = firstMessage(worker);
    worker.postMessage({ type: 'install' });
    const message = await answer;
    expect(message.type).toBe('failed');
    expect(message.message).toMatch(/sent 'install' before its configuration/);
  }, 30_000);
});
