// `runwall report` shows who called each destination (tool chains) and the job's process tree.
import { describe, expect, it } from 'vitest';
import { formatProcessTree, formatReport } from '../../src/cli/report-format.js';
import { buildProcessTree, summarizeEvents } from '../../src/policy/index.js';
import type { RunEvent, RunReport } from '../../src/protocol/index.js';
import { sampleReport } from '../helpers/sample-report.js';

const T = '2026-11-26T12:00:01.000Z';
const sh = { pid: 10, exe: '/usr/bin/dash', name: 'sh' };
const events: RunEvent[] = [
  { kind: 'process', seq: 1, time: T, action: 'exec', pid: 10, ppid: 9, exe: '/usr/bin/dash', argv: ['sh', '-c', 'curl x'], process: { pid: 10, name: 'sh', ancestry: [] } },
  { kind: 'process', seq: 2, time: T, action: 'exec', pid: 11, ppid: 10, exe: '/usr/bin/curl', argv: ['curl', '-s', 'http://203.0.113.9/'], process: { pid: 11, name: 'curl', ancestry: [sh] } },
  {
    kind: 'connection',
    seq: 3,
    time: T,
    protocol: 'tcp',
    family: 4,
    destination: '203.0.113.9',
    port: 80,
    verdict: 'blocked',
    rule: { source: 'default-deny', explanation: 'not allowed' },
    count: 1,
    process: { pid: 11, exe: '/usr/bin/curl', name: 'curl', ancestry: [sh] },
  },
  { kind: 'process', seq: 4, time: T, action: 'exit', pid: 11, exitCode: 7 },
  { kind: 'process', seq: 5, time: T, action: 'exit', pid: 10, exitCode: 7 },
];

function report(): RunReport {
  const base = sampleReport();
  return { ...base, events, summary: summarizeEvents(events), processes: [...buildProcessTree(events)] };
}

describe('report text: processes', () => {
  it('each destination shows the chain of tools that called it', () => {
    const text = formatReport(report());
    const line = text.split('\n').find((l) => l.includes('203.0.113.9'));
    expect(line).toContain('sh → curl');
  });

  it('the process tree is indented by depth, with arguments and exit statuses', () => {
    expect(formatProcessTree(report())).toEqual(['', 'Processes (2)', 'sh -c curl x (pid 10) → exit 7', '  curl -s http://203.0.113.9/ (pid 11) → exit 7']);
  });

  it('a large tree is cut, and says how much is left out', () => {
    const many: RunEvent[] = Array.from({ length: 100 }, (_, i) => ({
      kind: 'process',
      seq: i + 1,
      time: T,
      action: 'exec',
      pid: 100 + i,
      ppid: 99,
      exe: '/bin/true',
      argv: ['true'],
    }));
    const lines = formatProcessTree({ ...sampleReport(), events: many, processes: [...buildProcessTree(many)] });
    expect(lines.length).toBe(2 + 60 + 1);
    expect(lines.at(-1)).toBe('… 40 more processes in the report');
  });

  it('a report without processes has no section', () => {
    expect(formatProcessTree(sampleReport())).toEqual([]);
  });
});
