// What a run records for its report: the report file holds every event in order with the summary, steps, process
// tree and recommendation derived from them, exactly as a report built from the whole list; the spool is gone after,
// and a spool that could not be written is a problem in the report, not a lost event.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport, type ReportMetadata } from '../../../src/agent/report/build-report.js';
import { RunRecorder } from '../../../src/agent/report/run-recorder.js';
import { parseEndpointList, resolvePolicy } from '../../../src/policy/index.js';
import type { RunEvent, RunReport } from '../../../src/protocol/index.js';

const dir = mkdtempSync(join(tmpdir(), 'runwall-recorder-'));

const metadata: ReportMetadata = {
  run: { runId: 'test', surface: 'agent', host: 'test', startedAt: '2026-11-26T12:00:00.000Z', endedAt: '2026-11-26T12:10:00.000Z' },
  policy: resolvePolicy({ flags: { egressPolicy: 'block', allowedEndpoints: parseEndpointList('*.allowed.test', 'test') }, defaults: { dnsUpstream: '198.51.100.53:53' } }),
  enforcement: { enforced: true, failClosed: false, problems: [] },
};

const rule = { source: 'default-deny', explanation: 'no entry' } as const;

function runEvents(count: number): RunEvent[] {
  const events: RunEvent[] = [
    { kind: 'step', seq: 1, time: '2026-11-26T12:00:00.000Z', action: 'begin', id: 'build', name: 'Build', source: 'marker' },
    { kind: 'process', seq: 2, time: '2026-11-26T12:00:00.100Z', action: 'exec', pid: 10, ppid: 1, exe: '/usr/bin/curl', argv: ['curl', 'x'], step: 'build' },
  ];
  for (let i = 0; i < count; i += 1) {
    const name = `n${i % 500}.${i % 3 === 0 ? 'denied' : 'allowed'}.test`;
    events.push({
      kind: 'dns',
      seq: events.length + 1,
      time: '2026-11-26T12:00:01.000Z',
      step: 'build',
      name,
      qtype: 'A',
      transport: 'udp',
      client: '127.0.0.1:4000',
      verdict: i % 3 === 0 ? 'blocked' : 'allowed',
      rule,
      rcode: i % 3 === 0 ? 'NXDOMAIN' : 'NOERROR',
      answers: i % 3 === 0 ? [] : [{ name, type: 'A', ttl: 60, data: '198.51.100.10' }],
      admitted: [],
      process: { pid: 10, exe: '/usr/bin/curl', ancestry: [{ pid: 1, exe: '/usr/bin/bash' }] },
      ...(i % 5 === 0 ? { count: 4 } : {}),
    });
    if (i % 50 === 0) {
      events.push({ kind: 'connection', seq: events.length + 1, time: '2026-11-26T12:00:02.000Z', protocol: 'tcp', family: 4, destination: '198.51.100.10', port: 443, name, verdict: 'allowed', rule, count: 1 });
    }
  }
  events.push({ kind: 'step', seq: events.length + 1, time: '2026-11-26T12:00:03.000Z', action: 'end', id: 'build', name: 'Build', source: 'marker', outcome: 'success' });
  return events;
}

describe('RunRecorder', () => {
  it('writes the report a whole event list would make, streaming the events back from its spool', async () => {
    const events = runEvents(20_000);
    const spool = join(dir, 'a.spool');
    const recorder = await RunRecorder.open(metadata.policy, spool);
    for (const event of events) recorder.record(event);
    const path = join(dir, 'a.json');
    const head = await recorder.finish(metadata, path);
    const expected = buildReport({ ...metadata, events });
    const written = JSON.parse(readFileSync(path, 'utf8')) as RunReport;
    expect(written).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(Object.keys(written)).toEqual(Object.keys(expected));
    const { events: _events, ...expectedHead } = expected;
    expect(head).toEqual(expectedHead);
    expect(existsSync(spool)).toBe(false);
    expect(readdirSync(dir).filter((name) => name.startsWith('a.'))).toEqual(['a.json']);
  }, 60_000);

  it('without a report file keeps no spool, and still summarizes', async () => {
    const events = runEvents(100);
    const recorder = await RunRecorder.open(metadata.policy, null);
    for (const event of events) recorder.record(event);
    const head = await recorder.finish(metadata, null);
    expect(head.summary).toEqual(buildReport({ ...metadata, events }).summary);
  });

  it('events after the report was begun are not in it', async () => {
    const events = runEvents(10);
    const recorder = await RunRecorder.open(metadata.policy, join(dir, 'b.spool'));
    for (const event of events) recorder.record(event);
    const finished = recorder.finish(metadata, join(dir, 'b.json'));
    recorder.record({ kind: 'agent', seq: 999, time: 't', action: 'stop', message: 'late' });
    const head = await finished;
    expect(head.summary.counts.events).toBe(events.length);
    expect((JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8')) as RunReport).events).toHaveLength(events.length);
  });

  it('a spool that could not be created is a problem in the report; every event is still there', async () => {
    const events = runEvents(300);
    const recorder = await RunRecorder.open(metadata.policy, join(dir, 'missing', 'c.spool'));
    for (const event of events) recorder.record(event);
    const head = await recorder.finish(metadata, join(dir, 'c.json'));
    expect(head.enforcement.problems.map((problem) => problem.code)).toEqual(['RW_EVENTS_SPOOL_FAILED']);
    const written = JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8')) as RunReport;
    expect(written.events).toEqual(events);
    expect(written.enforcement.problems).toHaveLength(1);
  });
});
