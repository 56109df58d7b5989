// Steps in agent mode: explicit markers over the control socket, and the steps a GitHub runner's
// worker (Runner.Worker) starts, named from the worker's own log.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent, RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { REPO, RUNWALL, eventsOf } from '../../helpers/runwall-cli.js';

interface Machine {
  readonly dir: string;
  readonly resolvConf: string;
  readonly flags: string[];
  readonly stateFlags: string[];
}

function machine(): Machine {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-agent-steps-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 198.51.100.53\n');
  const stateFlags = ['--state-dir', join(dir, 'state')];
  return { dir, resolvConf, stateFlags, flags: [...stateFlags, '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'no-docker', 'daemon.json')] };
}

/** A shell on the "runner" whose /etc/resolv.conf is the one the agent manages. */
function onRunner(internet: Internet, m: Machine, script: string) {
  return internet.runInHost(['unshare', '--mount', 'sh', '-c', `mount --bind ${m.resolvConf} /etc/resolv.conf && ${script}`], { timeoutMs: 60_000 });
}

function hostOf(event: RunEvent): string | undefined {
  if (event.kind === 'dns') return event.name.replace(/\.$/, '');
  if (event.kind === 'connection') return event.name;
  return undefined;
}

/** The step names of the events that reached `host`. */
function stepNamesOf(report: RunReport, host: string): string[] {
  const names = new Map(eventsOf(report, 'step').map((event) => [event.id, event.name]));
  const events = report.events.filter((event) => (event.kind === 'dns' || event.kind === 'connection') && hostOf(event) === host);
  expect(events.length, `events for ${host}`).toBeGreaterThan(0);
  return [...new Set(events.map((event) => (event.step === undefined ? '(none)' : (names.get(event.step) ?? event.step))))];
}

describe('runwall agent: steps', () => {
  let internet: Internet;
  beforeAll(async () => {
    internet = await createInternet();
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  async function withAgent(m: Machine, run: () => Promise<void>): Promise<RunReport> {
    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--egress-policy', 'audit', ...m.flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    try {
      await run();
    } finally {
      const reportPath = join(m.dir, 'report.json');
      const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...m.stateFlags], { cwd: REPO, timeoutMs: 30_000 });
      expect(stop.code).toBe(0);
    }
    return JSON.parse(readFileSync(join(m.dir, 'report.json'), 'utf8')) as RunReport;
  }

  it('control-socket markers: events between begin and end NAME belong to the named step', async () => {
    const m = machine();
    const marker = (action: string, name: string) => internet.runInHost([...RUNWALL, 'agent', 'step', action, name, ...m.stateFlags], { cwd: REPO });
    let unknownEnd = { code: 0 as number | null, stderr: '' };
    const report = await withAgent(m, async () => {
      expect((await marker('begin', 'Build')).stdout).toMatch(/^runwall agent: step 'Build' began \(step-\d+\)$/m);
      expect((await onRunner(internet, m, 'curl -s -m 3 http://n21.gen.test:443/build > /dev/null')).code).toBe(0);
      expect((await marker('end', 'Build')).code).toBe(0);
      expect((await marker('begin', 'Test')).code).toBe(0);
      expect((await onRunner(internet, m, 'curl -s -m 3 http://n22.gen.test:443/test > /dev/null')).code).toBe(0);
      expect((await marker('end', 'Test')).code).toBe(0);
      expect((await onRunner(internet, m, 'curl -s -m 3 http://n23.gen.test:443/after > /dev/null')).code).toBe(0);
      unknownEnd = await marker('end', 'Deploy');
    });
    expect(unknownEnd.code).toBe(250);
    expect(unknownEnd.stderr).toMatch(/RW_CONTROL_FAILED: .*no step named 'Deploy' is open/);
    expect(report.steps?.map((step) => [step.name, step.source, step.outcome])).toEqual([
      ['Build', 'marker', 'success'],
      ['Test', 'marker', 'success'],
    ]);
    expect(stepNamesOf(report, 'n21.gen.test')).toEqual(['Build']);
    expect(stepNamesOf(report, 'n22.gen.test')).toEqual(['Test']);
    expect(stepNamesOf(report, 'n23.gen.test')).toEqual(['(none)']);
    const build = report.events.filter((event) => hostOf(event) === 'n21.gen.test');
    expect(build.every((event) => event.stepAttribution === 'time-window')).toBe(true);
  }, 120_000);

  it("a runner worker's children are its steps, named from the worker's log; a background process stays in its step", async () => {
    const m = machine();
    // A runner laid out as actions/runner installs itself: bin/Runner.Worker, _diag/Worker_*.log, _work/_temp/*.sh.
    const root = join(m.dir, 'runner');
    for (const dir of ['bin', '_diag', '_work/_temp']) mkdirSync(join(root, dir), { recursive: true });
    const worker = join(root, 'bin', 'Runner.Worker');
    copyFileSync('/bin/bash', worker); // a real executable named as the worker, so the kernel reports that name
    chmodSync(worker, 0o755);
    const log = join(root, '_diag', 'Worker_20260101-000000-utc.log');
    writeFileSync(log, '[2026-01-01 00:00:00Z INFO Worker] Job message received.\n');
    const temp = join(root, '_work', '_temp');
    writeFileSync(
      join(temp, 'a1.sh'),
      `curl -s -m 3 http://n31.gen.test:443/install > /dev/null
( for i in $(seq 200); do [ -e ${temp}/go ] && break; sleep 0.05; done; curl -s -m 3 http://n32.gen.test:443/bg > /dev/null; touch ${temp}/bg-done ) > /dev/null 2>&1 &
`,
    );
    writeFileSync(
      join(temp, 'a2.sh'),
      `touch ${temp}/go
for i in $(seq 200); do [ -e ${temp}/bg-done ] && break; sleep 0.05; done
curl -s -m 3 http://n33.gen.test:443/test > /dev/null
exit 2
`,
    );
    writeFileSync(join(temp, 'a3.sh'), 'curl -s -m 3 http://n34.gen.test:443/unnamed > /dev/null\n');
    const line = (name: string) => `printf '%s\\n' "[2026-01-01 00:00:01Z INFO StepsRunner] Processing step: DisplayName='${name}'" >> ${log}`;
    // The worker: logs "Processing step", then runs the step as its child, as the real one does.
    const job = [line('Install dependencies'), `/bin/bash -e ${temp}/a1.sh`, line("Run 'tests'"), `/bin/bash -e ${temp}/a2.sh`, `/bin/bash -e ${temp}/a3.sh`, 'exit 0'].join('\n');
    const jobFile = join(m.dir, 'job.sh');
    writeFileSync(jobFile, job);
    const report = await withAgent(m, async () => {
      const run = await onRunner(internet, m, `${worker} ${jobFile}`);
      expect(run.code).toBe(0);
    });
    const runnerSteps = (report.steps ?? []).filter((step) => step.source === 'runner');
    expect(runnerSteps.map((step) => [step.name, step.outcome, step.exitCode])).toEqual([
      ['Install dependencies', 'success', 0],
      ["Run 'tests'", 'failure', 2],
      ['Run curl -s -m 3 http://n34.gen.test:443/unnamed > /dev/null', 'success', 0],
    ]);
    expect(stepNamesOf(report, 'n31.gen.test')).toEqual(['Install dependencies']);
    expect(stepNamesOf(report, 'n33.gen.test')).toEqual(["Run 'tests'"]);
    expect(report.events.filter((event) => (event.kind === 'dns' || event.kind === 'connection') && /^n3\d\./.test(hostOf(event) ?? '') && event.step === undefined)).toEqual([]);
    // Started in step 1, connected while step 2 ran: step 1's, by its process tree. (Its DNS query is step 1's
    // too when the process sensor could tell whose it was; lookups close together can leave that open.)
    const background = report.events.filter((event) => hostOf(event) === 'n32.gen.test');
    const connections = background.filter((event) => event.kind === 'connection');
    expect(connections.length).toBeGreaterThan(0);
    expect(connections.every((event) => event.step === runnerSteps[0]?.id && event.stepAttribution === 'process-tree')).toBe(true);
    expect(background.filter((event) => event.stepAttribution === 'process-tree').every((event) => event.step === runnerSteps[0]?.id)).toBe(true);
    expect(stepNamesOf(report, 'n34.gen.test')).toEqual(['Run curl -s -m 3 http://n34.gen.test:443/unnamed > /dev/null']);
  }, 120_000);
});
