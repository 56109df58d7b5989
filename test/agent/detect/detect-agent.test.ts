// Under `runwall agent`, a process that signals the agent is guard tampering, named with the signal and
// the process that sent it: a real kill(2) at the agent's pid (signal 0 and SIGCONT, which harm nothing).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { REPO, RUNWALL } from '../../helpers/runwall-cli.js';

describe('signals to the agent', () => {
  let internet: Internet;
  beforeAll(async () => {
    internet = await createInternet();
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('are reported as guard tampering with the sender and the signal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runwall-agent-signal-'));
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 198.51.100.53\n');
    const flags = ['--state-dir', join(dir, 'state'), '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'daemon.json')];
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code, start.stderr).toBe(0);
    const status = JSON.parse((await internet.runInHost([...RUNWALL, 'agent', 'status', ...flags.slice(0, 2)], { cwd: REPO })).stdout) as { pid: number };
    // Three rounds, then time for audit to deliver on a loaded machine before the agent stops.
    const sent = await internet.runInHost(['sh', '-c', `for i in 1 2 3; do /usr/bin/kill -0 ${status.pid} && /usr/bin/kill -CONT ${status.pid} || exit 1; sleep 0.3; done; echo sent`]);
    expect(sent.stdout).toContain('sent');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const reportPath = join(dir, 'report.json');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...flags.slice(0, 2)], { cwd: REPO, timeoutMs: 30_000 });
    expect(stop.code, stop.stderr).toBe(0);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    const signals = report.events.filter((e) => e.kind === 'detection' && e.evidence['what'] === 'agent-signal');
    expect(signals.length, JSON.stringify(report.events.filter((e) => e.kind === 'detection' || (e.kind === 'agent' && e.action === 'error')))).toBeGreaterThan(0);
    const detection = signals[0]!;
    expect(detection.kind === 'detection' && detection.id).toBe('guard-tamper');
    expect(detection.process?.exe).toBe('/usr/bin/kill');
    expect(signals.map((e) => (e.kind === 'detection' ? e.evidence['signal'] : null))).toEqual(expect.arrayContaining([0, 18]));
  }, 90_000);
});
