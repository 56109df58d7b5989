// The L7 check judged in the calling thread (the agent's choice) speaks as its worker thread does:
// it refuses to work before it is configured, says so, and then ends.
import { describe, expect, it } from 'vitest';
import { InThreadL7 } from '../../../src/agent/l7/l7-in-thread.js';
import type { L7WorkerMessage } from '../../../src/agent/l7/l7-worker.js';

describe('the L7 check in this thread', () => {
  it('says it failed when told to work before it was configured, then exits', async () => {
    const judge = new InThreadL7();
    const messages: L7WorkerMessage[] = [];
    judge.on('message', (message) => messages.push(message));
    const exited = new Promise<number>((resolve) => judge.once('exit', resolve));
    judge.postMessage({ type: 'install' });
    expect(await exited).toBe(0);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ type: 'failed', message: expect.stringMatching(/sent 'install' before its configuration/) });
  });

  it('delivers nothing after terminate', async () => {
    const judge = new InThreadL7();
    const messages: L7WorkerMessage[] = [];
    judge.on('message', (message) => messages.push(message));
    expect(await judge.terminate()).toBe(1);
    judge.postMessage({ type: 'install' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(messages).toEqual([]);
  });
});
