import { describe, expect, it } from 'vitest';
import { summarizeSteps } from '../../src/policy/index.js';
import type { RunEvent } from '../../src/protocol/index.js';

const rule = { source: 'allowed-endpoints', explanation: 'allowed' } as const;

describe('summarizeSteps', () => {
  it('one entry per step in the order they began, with outcome, times and how many events it holds', () => {
    const events: RunEvent[] = [
      { kind: 'step', seq: 1, time: 't1', action: 'begin', id: 'build', name: 'Build', source: 'workflow', process: { pid: 10 } },
      { kind: 'dns', seq: 2, time: 't2', step: 'build', name: 'a.test', qtype: 'A', transport: 'udp', client: 'x', verdict: 'allowed', rule, rcode: 'NOERROR', answers: [], admitted: [] },
      { kind: 'step', seq: 3, time: 't3', action: 'end', id: 'build', name: 'Build', source: 'workflow', outcome: 'failure', conclusion: 'success', exitCode: 3, reason: 'it exited with status 3', notes: ['continue-on-error: the failure does not fail the job'] },
      { kind: 'step', seq: 4, time: 't4', action: 'end', id: 'deploy', name: 'Deploy', source: 'workflow', outcome: 'skipped', reason: 'its condition is false' },
      { kind: 'step', seq: 5, time: 't5', action: 'begin', id: 'late', name: 'Late', source: 'marker' },
      { kind: 'agent', seq: 6, time: 't6', step: 'build', action: 'stop', message: 'x' },
    ];
    expect(summarizeSteps(events)).toEqual([
      { id: 'build', name: 'Build', source: 'workflow', startedAt: 't1', endedAt: 't3', outcome: 'failure', conclusion: 'success', exitCode: 3, reason: 'it exited with status 3', notes: ['continue-on-error: the failure does not fail the job'], events: 2 },
      { id: 'deploy', name: 'Deploy', source: 'workflow', endedAt: 't4', outcome: 'skipped', reason: 'its condition is false', events: 0 },
      { id: 'late', name: 'Late', source: 'marker', startedAt: 't5', events: 0 },
    ]);
  });

  it('counts the events of a step that came before the step itself began', () => {
    const events: RunEvent[] = [
      { kind: 'dns', seq: 1, time: 't1', step: 'early', name: 'a.test', qtype: 'A', transport: 'udp', client: 'x', verdict: 'allowed', rule, rcode: 'NOERROR', answers: [], admitted: [] },
      { kind: 'step', seq: 2, time: 't2', action: 'begin', id: 'early', name: 'Early', source: 'runner' },
      { kind: 'agent', seq: 3, time: 't3', step: 'nowhere', action: 'stop', message: 'x' },
    ];
    expect(summarizeSteps(events)).toEqual([{ id: 'early', name: 'Early', source: 'runner', startedAt: 't2', events: 1 }]);
  });
});
