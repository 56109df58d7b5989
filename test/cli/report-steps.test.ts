// `runwall report`: the Steps section, from a report with steps.
import { describe, expect, it } from 'vitest';
import { formatReport } from '../../src/cli/report-format.js';
import { buildReport } from '../../src/agent/report/build-report.js';
import type { RunEvent } from '../../src/protocol/index.js';
import { sampleReport } from '../helpers/sample-report.js';

const rule = { source: 'allowed-endpoints', explanation: 'allowed by registry.test:443' } as const;
const denied = { source: 'default-deny', explanation: 'evil.test is not in allowed-endpoints', suggestion: 'add evil.test:443' } as const;

function withSteps(): ReturnType<typeof buildReport> {
  const base = sampleReport({ command: undefined, workflow: { path: '.github/workflows/ci.yml', job: 'build', name: 'CI' } });
  const events: RunEvent[] = [
    { kind: 'step', seq: 1, time: '2026-11-26T12:00:01.000Z', step: 'install', action: 'begin', id: 'install', name: 'Install', source: 'workflow', process: { pid: 10 } },
    { kind: 'connection', seq: 2, time: '2026-11-26T12:00:01.500Z', step: 'install', stepAttribution: 'process-tree', protocol: 'tcp', family: 4, destination: '198.51.100.7', port: 443, name: 'registry.test', verdict: 'allowed', rule, count: 1, process: { pid: 11, exe: '/usr/bin/curl' } },
    { kind: 'step', seq: 3, time: '2026-11-26T12:00:02.000Z', step: 'install', action: 'end', id: 'install', name: 'Install', source: 'workflow', outcome: 'success', conclusion: 'success', exitCode: 0 },
    { kind: 'step', seq: 4, time: '2026-11-26T12:00:02.100Z', step: 'step-2', action: 'end', id: 'step-2', name: 'Run actions/checkout@v4', source: 'workflow', outcome: 'skipped', conclusion: 'skipped', reason: "'actions/checkout@v4' is a remote action" },
    { kind: 'step', seq: 5, time: '2026-11-26T12:00:02.200Z', step: 'test', action: 'begin', id: 'test', name: 'Test', source: 'workflow' },
    { kind: 'connection', seq: 6, time: '2026-11-26T12:00:02.500Z', step: 'test', stepAttribution: 'time-window', protocol: 'tcp', family: 4, destination: '203.0.113.66', port: 443, name: 'evil.test', verdict: 'blocked', rule: denied, count: 2 },
    { kind: 'detection', seq: 7, time: '2026-11-26T12:00:02.600Z', step: 'test', id: 'recon-metadata', severity: 'high', title: 'Cloud metadata address contacted', evidence: {}, remedy: 'x' },
    { kind: 'step', seq: 8, time: '2026-11-26T12:00:03.000Z', step: 'test', action: 'end', id: 'test', name: 'Test', source: 'workflow', outcome: 'failure', conclusion: 'success', exitCode: 3, reason: 'it exited with status 3', notes: ['continue-on-error: the failure does not fail the job'] },
    { kind: 'dns', seq: 9, time: '2026-11-26T12:00:04.000Z', name: 'late.test', qtype: 'A', transport: 'udp', client: 'x', verdict: 'allowed', rule, rcode: 'NOERROR', answers: [], admitted: [] },
  ];
  return buildReport({ run: base.run, policy: base.policy, enforcement: base.enforcement, events });
}

describe('runwall report: steps', () => {
  it('a section per step with its outcome, its destinations and verdicts, skipped steps with the reason', () => {
    const text = formatReport(withSteps());
    expect(text).toContain('workflow: .github/workflows/ci.yml, job build (CI)  → exit 0');
    const section = text.slice(text.indexOf('\nSteps\n') + 1, text.indexOf('\nWhy\n')).trimEnd();
    expect(section.split('\n')).toEqual([
      'Steps',
      '1. Install  [install]  success  12:00:01Z → 12:00:02Z',
      '   verdict  destination    port  proto  count  by',
      '   -------  -------------  ----  -----  -----  ----',
      '   allowed  registry.test  443   tcp    1      curl',
      '2. Run actions/checkout@v4  [step-2]  skipped',
      "   skipped: 'actions/checkout@v4' is a remote action",
      '3. Test  [test]  failure (exit 3), concluded success  12:00:02Z → 12:00:03Z',
      '   why: it exited with status 3',
      '   note: continue-on-error: the failure does not fail the job',
      '   verdict  destination  port  proto  count  by',
      '   -------  -----------  ----  -----  -----  --',
      '   BLOCKED  evil.test    443   tcp    2      -',
      '   ! HIGH recon-metadata: Cloud metadata address contacted',
      '   (placed by time, not by process: 1 of its 2 events)',
      'Outside any step',
      '   verdict  destination  port  proto  count  by',
      '   -------  -----------  ----  -----  -----  --',
      '   allowed  late.test    -     dns    1      -',
    ]);
  });

  it('a report without steps has no Steps section', () => {
    expect(formatReport(sampleReport())).not.toContain('\nSteps\n');
  });
});
