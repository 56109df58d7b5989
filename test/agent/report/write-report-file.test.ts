// A report with hundreds of thousands of events is written without one giant string, and reads back as the same
// valid JSON report; a failed write leaves no partial file behind.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../../../src/agent/report/build-report.js';
import { writeReportFile } from '../../../src/agent/report/write-report-file.js';
import { parseEndpointList, resolvePolicy } from '../../../src/policy/index.js';
import type { DnsEvent, RunReport } from '../../../src/protocol/index.js';

/** A report as the agent writes it: the fields, and the events as their JSON texts. */
function writeReport(path: string, report: RunReport): Promise<void> {
  const { events, ...head } = report;
  return writeReportFile(path, head, events.map((event) => JSON.stringify(event)));
}

const dir = mkdtempSync(join(tmpdir(), 'runwall-write-report-'));

function dnsEvent(seq: number): DnsEvent {
  return {
    kind: 'dns',
    seq,
    time: new Date(Date.UTC(2026, 10, 26, 12, 0, 0, seq % 1000)).toISOString(),
    name: `n${seq % 1000}.allowed.test`,
    qtype: 'A',
    transport: 'udp',
    client: '100.64.0.2:40000',
    verdict: 'allowed',
    rule: { source: 'allowed-endpoints', entry: '*.allowed.test:443', explanation: 'the name matches *.allowed.test' },
    rcode: 'NOERROR',
    answers: [{ name: `n${seq % 1000}.allowed.test`, type: 'A', ttl: 60, data: '198.51.100.10' }],
    admitted: ['198.51.100.10:443'],
    ...(seq % 7 === 0 ? { count: 3 } : {}),
  };
}

function report(events: DnsEvent[]): RunReport {
  return buildReport({
    run: { runId: 'test', surface: 'exec', host: 'test', startedAt: '2026-11-26T12:00:00.000Z', endedAt: '2026-11-26T12:10:00.000Z' },
    policy: resolvePolicy({
      flags: { egressPolicy: 'block', allowedEndpoints: parseEndpointList('*.allowed.test', 'test') },
      defaults: { dnsUpstream: '198.51.100.53:53' },
    }),
    enforcement: { enforced: true, failClosed: false, problems: [] },
    events,
  });
}

describe('writeReportFile', () => {
  it('writes and reads back a report of 300,000 events', async () => {
    const events = Array.from({ length: 300_000 }, (_, seq) => dnsEvent(seq));
    const written = report(events);
    const path = join(dir, 'big.json');
    const started = Date.now();
    await writeReport(path, written);
    expect(Date.now() - started).toBeLessThan(20_000);
    const read = JSON.parse(readFileSync(path, 'utf8')) as RunReport;
    expect(read.events).toHaveLength(300_000);
    expect(read.events[123_456]).toEqual(events[123_456]);
    expect(read.summary).toEqual(written.summary);
    expect(Object.keys(read)).toEqual(Object.keys(written));
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  }, 60_000);

  it('reads back equal to the report, with and without events', async () => {
    for (const events of [[], [dnsEvent(1), dnsEvent(7)]]) {
      const written = report(events);
      const path = join(dir, `small-${events.length}.json`);
      await writeReport(path, written);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(JSON.parse(JSON.stringify(written)));
    }
  });

  it('prints every field but the events as JSON.stringify(report, null, 2) does, piece by piece', async () => {
    const written = report(Array.from({ length: 50 }, (_, seq) => dnsEvent(seq)));
    const path = join(dir, 'pretty.json');
    await writeReport(path, { ...written, events: [] });
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify({ ...written, events: [] }, null, 2) + '\n');
  });

  it('leaves neither report nor temp file when the directory does not exist', async () => {
    const path = join(dir, 'missing', 'report.json');
    await expect(writeReport(path, report([]))).rejects.toThrow();
    expect(existsSync(path)).toBe(false);
  });
});
