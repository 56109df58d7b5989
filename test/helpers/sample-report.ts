// A small, complete run report for tests of consumers of the format (server, report printer).
import type { RunReport } from '../../src/protocol/index.js';
import { RUNWALL_VERSION } from '../../src/protocol/index.js';
import { recommendPolicy, summarizeEvents } from '../../src/policy/index.js';

export function sampleReport(overrides: Partial<RunReport['run']> = {}): RunReport {
  const t = '2026-11-26T12:00:00.000Z';
  const report: Omit<RunReport, 'summary' | 'recommendedPolicy'> = {
    schemaVersion: 1,
    run: {
      runId: 'r-sample-1',
      surface: 'exec',
      tool: { name: 'runwall', version: RUNWALL_VERSION },
      host: 'runner-1',
      startedAt: t,
      endedAt: '2026-11-26T12:00:05.000Z',
      command: ['npm', 'ci'],
      exitCode: 0,
      ci: { provider: 'github', repository: 'acme/app', workflow: 'ci.yml', job: 'build', runId: '42', runAttempt: '1' },
      ...overrides,
    },
    policy: {
      egressPolicy: 'block',
      allowedEndpoints: [{ kind: 'domain', host: 'registry.test', port: 443, text: 'registry.test:443' }],
      blockList: [{ kind: 'domain', value: 'evil.test', reason: 'exfiltration endpoint', text: 'evil.test' }],
      dnsUpstream: '127.0.0.1:53',
      disableFileMonitoring: false,
      origins: { egressPolicy: 'flag', allowedEndpoints: 'flag' },
    },
    enforcement: { enforced: true, failClosed: false, problems: [] },
    events: [
      {
        kind: 'dns', seq: 1, time: t, name: 'registry.test', qtype: 'A', transport: 'udp', client: '100.64.0.2:40000',
        verdict: 'allowed', rcode: 'NOERROR',
        rule: { source: 'allowed-endpoints', entry: 'registry.test:443', explanation: 'registry.test matches allowed endpoint registry.test:443' },
        answers: [{ name: 'registry.test', type: 'A', ttl: 60, data: '198.51.100.10' }], admitted: ['198.51.100.10:443'],
      },
      {
        kind: 'connection', seq: 2, time: t, protocol: 'tcp', family: 4, destination: '203.0.113.66', port: 443, verdict: 'blocked', count: 1,
        process: { pid: 1234, exe: '/usr/bin/curl', argv: ['curl', 'https://203.0.113.66/'] },
        rule: { source: 'default-deny', explanation: '203.0.113.66:443 matches no allowed endpoint', suggestion: 'add 203.0.113.66:443 to allowed-endpoints' },
      },
      {
        kind: 'dns', seq: 3, time: t, name: 'evil.test', qtype: 'A', transport: 'udp', client: '100.64.0.2:40001',
        verdict: 'attack-blocked', rcode: 'NXDOMAIN', answers: [], admitted: [],
        rule: { source: 'block-list', entry: 'evil.test', reason: 'exfiltration endpoint', explanation: 'evil.test is on the global block list: exfiltration endpoint' },
      },
    ],
  };
  // Derived the way a real run derives them, so consumers see what the engine writes.
  return { ...report, summary: summarizeEvents(report.events), recommendedPolicy: recommendPolicy(report.events, report.policy) };
}
