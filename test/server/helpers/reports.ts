// Run reports and events for server tests, built on the shared sample report.
import type { RunEvent, RunReport, Verdict } from '../../../src/protocol/index.js';
import { sampleReport } from '../../helpers/sample-report.js';

export interface Destination {
  readonly name: string;
  readonly verdict?: Verdict;
  readonly port?: number;
  readonly exe?: string;
  readonly step?: string;
}

export interface ReportShape {
  readonly runId: string;
  readonly repo?: string;
  readonly workflow?: string;
  readonly job?: string;
  readonly startedAt?: string;
  readonly destinations?: readonly Destination[];
  readonly sha?: string;
  readonly mode?: 'audit' | 'block';
}

/** One DNS event and one connection event per destination. */
export function destinationEvents(destinations: readonly Destination[], startSeq = 1, time = '2026-11-26T12:00:01.000Z'): RunEvent[] {
  const events: RunEvent[] = [];
  let seq = startSeq;
  const base = Date.parse(time);
  destinations.forEach((d, i) => {
    const verdict = d.verdict ?? 'allowed';
    const at = new Date(base + i * 1000).toISOString();
    const source = verdict === 'attack-blocked' ? 'block-list' : verdict === 'allowed' ? 'allowed-endpoints' : 'default-deny';
    const rule = { source, explanation: `${d.name} ${verdict}` } as const;
    const process = d.exe ? { pid: 1000 + i, exe: d.exe, ancestry: [{ pid: 10, exe: '/usr/bin/bash' }] } : undefined;
    events.push({
      kind: 'dns', seq: seq++, time: at, name: d.name, qtype: 'A', transport: 'udp', client: '100.64.0.2:40000', verdict, rule,
      rcode: verdict === 'allowed' || verdict === 'audit' ? 'NOERROR' : 'NXDOMAIN', answers: [], admitted: [],
      ...(process ? { process } : {}), ...(d.step ? { step: d.step } : {}),
    });
    events.push({
      kind: 'connection', seq: seq++, time: at, protocol: 'tcp', family: 4, destination: `198.51.100.${(i % 250) + 1}`, port: d.port ?? 443,
      name: d.name, verdict, rule, count: 1, ...(process ? { process } : {}), ...(d.step ? { step: d.step } : {}),
    });
  });
  return events;
}

const RANK: Verdict[] = ['allowed', 'audit', 'blocked', 'attack-blocked'];

export function makeReport(shape: ReportShape): RunReport {
  const startedAt = shape.startedAt ?? '2026-11-26T12:00:00.000Z';
  const sample = sampleReport({
    runId: shape.runId,
    startedAt,
    endedAt: new Date(Date.parse(startedAt) + 30_000).toISOString(),
    ci: {
      provider: 'github',
      repository: shape.repo ?? 'acme/app',
      workflow: shape.workflow ?? 'ci.yml',
      job: shape.job ?? 'build',
      runId: '42',
      runAttempt: '1',
      ...(shape.sha ? { sha: shape.sha } : {}),
    },
  });
  // Audit mode is never "enforced" (see EnforcementStatus).
  const base = { ...sample, enforcement: { ...sample.enforcement, enforced: (shape.mode ?? 'block') === 'block' } };
  if (!shape.destinations) return { ...base, policy: { ...base.policy, egressPolicy: shape.mode ?? base.policy.egressPolicy } };
  const events = destinationEvents(shape.destinations, 1, shape.startedAt ?? '2026-11-26T12:00:01.000Z');
  const worst = shape.destinations.reduce((w, d) => Math.max(w, RANK.indexOf(d.verdict ?? 'allowed')), 0);
  const count = (v: Verdict) => events.filter((e) => 'verdict' in e && e.verdict === v).length;
  return {
    ...base,
    policy: { ...base.policy, egressPolicy: shape.mode ?? base.policy.egressPolicy },
    events,
    summary: {
      destinations: shape.destinations.map((d) => ({
        name: d.name, addresses: [], port: d.port ?? 443, protocol: 'tcp', count: 1, verdict: d.verdict ?? 'allowed', processes: d.exe ? [d.exe] : [],
      })),
      counts: { events: events.length, allowed: count('allowed'), blocked: count('blocked'), attackBlocked: count('attack-blocked'), audit: count('audit'), detections: 0 },
      verdict: RANK[worst] ?? 'allowed',
    },
  };
}

export function withoutEvents(report: RunReport): Omit<RunReport, 'events'> {
  const { events: _events, ...rest } = report;
  return rest;
}
