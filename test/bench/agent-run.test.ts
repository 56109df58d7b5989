// The figures the bench reads from `runwall agent status`.
import { describe, expect, it } from 'vitest';
import { parseAgentStatus } from '../../bench/agent-run.js';

describe('agent status', () => {
  it('reads pid, time to enforcing and RSS from the JSON the agent prints', () => {
    const text = JSON.stringify({ pid: 4242, mode: 'block', startedAt: '2026-01-01T00:00:00.000Z', enforcingAfterMs: 212, resolvers: ['127.0.0.153'], events: 1, problems: [], rssBytes: 5e7 }, null, 2);
    expect(parseAgentStatus(text)).toEqual({ pid: 4242, enforcingAfterMs: 212, rssBytes: 5e7 });
  });

  it('refuses output that is not a status', () => {
    expect(() => parseAgentStatus('runwall agent: not running\n')).toThrow();
    expect(() => parseAgentStatus('{"pid": "4242", "enforcingAfterMs": 1, "rssBytes": 1}')).toThrow(/lacks/);
    expect(() => parseAgentStatus('null')).toThrow(/not a JSON object/);
  });
});
