// The runner's worker log names each step as it starts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { latestWorkerLog, parseWorkerLog } from '../../../src/agent/steps/worker-log.js';

const LOG = `[2026-03-23 07:54:50Z INFO Worker] Waiting to receive the job message from the channel.
[2026-03-23 07:54:53Z INFO StepsRunner] Processing step: DisplayName='Run actions/checkout@v4'
[2026-03-23 07:54:53Z INFO StepsRunner] Starting the step.
[2026-03-23 07:54:55Z INFO StepsRunner] No need for updating job result with current step result 'Succeeded'.
[2026-03-23 07:54:56Z INFO StepsRunner] Processing step: DisplayName='Build 'the' app'\r
[2020-01-01 00:00:00Z INFO StepsRunner] Processing step: DisplayName='Old runner', AlwaysRun=False, ContinueOnError=False, Critical=False, Enabled=True
[2026-03-23 07:55:03Z INFO StepsRunner] Processing step: DisplayName='Post Run actions/checkout@v4'
[2026-03-23 07:55:03Z INFO StepsRunner] Processing step: DisplayName='truncated`;

describe('parseWorkerLog', () => {
  it('reads the step names in order, with their times; quotes inside a name are kept', () => {
    expect(parseWorkerLog(LOG)).toEqual([
      { time: '2026-03-23T07:54:53Z', name: 'Run actions/checkout@v4' },
      { time: '2026-03-23T07:54:56Z', name: "Build 'the' app" },
      { time: '2020-01-01T00:00:00Z', name: 'Old runner' },
      { time: '2026-03-23T07:55:03Z', name: 'Post Run actions/checkout@v4' },
    ]);
  });

  it('any display name written as the runner writes it reads back', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\r\n]/.test(s)), { maxLength: 8 }), (names) => {
        const text = names.map((name) => `[2026-03-23 07:54:53Z INFO StepsRunner] Processing step: DisplayName='${name}'`).join('\n');
        expect(parseWorkerLog(text).map((step) => step.name)).toEqual(names);
      }),
    );
  });

  it('the latest worker log is the one opened last', () => {
    expect(latestWorkerLog(['Runner_20260323-075000-utc.log', 'Worker_20260323-075450-utc.log', 'Worker_20260322-100000-utc.log', 'pages'])).toBe('Worker_20260323-075450-utc.log');
    expect(latestWorkerLog(['Runner_20260323-075000-utc.log'])).toBeUndefined();
  });
});
