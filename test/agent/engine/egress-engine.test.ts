// The egress engine against the real kernel, in a namespace made for this test (the child, engine-in-netns.ts,
// runs there): start resolves only with every rule in place, a blocked attempt right before stop is still
// reported, stop leaves nothing, and a part that cannot start fails the start and leaves nothing either.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, ip } from '../../../src/agent/platform/index.js';
import { runInNetns, testNetnsName } from '../../helpers/in-netns.js';
import type { ScenarioInput, ScenarioResult } from './engine-in-netns.js';

const CHILD = resolve(import.meta.dirname, 'engine-in-netns.ts');
const ns = testNetnsName('engine');
/** Behind a veth pair inside the test's namespace: routed, so the SYN meets the table, and going nowhere. */
const BLOCKED = '203.0.113.77';

function scenario<S extends ScenarioResult['scenario']>(name: S): Promise<Extract<ScenarioResult, { scenario: S }>> {
  const input: ScenarioInput = { scenario: name, cgroup: `rwt-engine-${process.pid}`, blockedAddress: BLOCKED };
  return runInNetns(ns, CHILD, input, { timeoutMs: 30_000 });
}

describe('EgressEngine', () => {
  beforeAll(() => {
    createNetns(ns);
    ip(['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], { netns: ns });
    ip(['addr', 'add', '203.0.113.1/24', 'dev', 'v0'], { netns: ns });
    ip(['link', 'set', 'v0', 'up'], { netns: ns });
    ip(['link', 'set', 'v1', 'up'], { netns: ns });
  });
  afterAll(() => deleteNetns(ns));

  it('starts with the table and the L7 rules in place, reports an attempt made right before stop, and stop removes it all', async () => {
    const result = await scenario('start-stop');
    expect(result.started).toEqual({ table: true, l7Chains: { v4: 3, v6: 3 } });
    expect(result.blocked).toEqual([expect.objectContaining({ kind: 'connection', destination: BLOCKED, port: 443, verdict: 'blocked' })]);
    expect(result.stopped).toEqual({ table: false, l7Chains: { v4: 0, v6: 0 } });
  });

  it('when the L7 check cannot bind its queue, start fails and leaves no table, rule or log reader; a later start works', async () => {
    const result = await scenario('l7-queue-taken');
    expect(result.error?.code).toBe('RW_SETUP_FAILED');
    expect(result.after).toEqual({ table: false, l7Chains: { v4: 0, v6: 0 } });
    expect(result.nflogFree).toBe(true);
    expect(result.retried).toEqual({ table: true, l7Chains: { v4: 3, v6: 3 } });
  });
});
