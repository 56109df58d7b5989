// A job resolving one allowed name 500 times makes a handful of dns events whose counts add up to 500: memory and
// report size stay bounded under heavy DNS load, in the report and the streamed events file alike.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsEvent, RunEvent } from '../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { eventsOf, execInHost, type ExecResult } from '../../helpers/runwall-cli.js';

let internet: Internet;
let result: ExecResult;

beforeAll(async () => {
  internet = await createInternet();
  result = await execInHost(
    internet,
    ['--egress-policy', 'block', '--allowed-endpoints', 'allowed.test:443'],
    `n=0; for i in $(seq 500); do dig +short +tries=1 +time=3 allowed.test | grep -q 198.51.100.10 && n=$((n+1)); done; echo "resolved $n"`,
    { timeoutMs: 120_000 },
  );
}, 150_000);
afterAll(async () => {
  await internet?.destroy();
});

function allowedA(events: readonly DnsEvent[]): DnsEvent[] {
  return events.filter((e) => e.name.replace(/\.$/, '') === 'allowed.test' && e.qtype === 'A' && e.verdict === 'allowed' && e.rcode === 'NOERROR');
}

describe('500 identical DNS queries', () => {
  it('all resolve, and fold into far fewer events whose counts sum to 500', () => {
    expect(result.stdout.trim()).toBe('resolved 500');
    const events = allowedA(eventsOf(result.report!, 'dns'));
    expect(events.reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(500);
    expect(events.length).toBeLessThan(100);
    // The first of them still carries the answer and what was admitted.
    expect(events[0]!.answers.map((a) => a.data)).toContain('198.51.100.10');
    expect(events[0]!.admitted).toContain('198.51.100.10:443');
  });

  it('the summary counts every query, and the streamed events file carries the same counts', () => {
    const destination = result.report!.summary.destinations.find((d) => d.name === 'allowed.test');
    expect(destination?.count).toBeGreaterThanOrEqual(500);
    const streamed = readFileSync(result.eventsPath, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as RunEvent)
      .filter((e): e is DnsEvent => e.kind === 'dns');
    expect(allowedA(streamed).reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(500);
  });
});
