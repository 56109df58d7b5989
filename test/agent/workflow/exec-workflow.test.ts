// `runwall exec --workflow FILE --job ID` in the test internet: a workflow's run: steps, each a step of one report.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent, RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Internet, type RunResult } from '../../helpers/internet.js';
import { REPO, RUNWALL, eventsOf } from '../../helpers/runwall-cli.js';

// n11..n14.gen.test answer 198.51.100.61..64: one address per step, so each connection names its host.
const WORKFLOW = `name: audit me
on: push
env:
  GREETING: hello
jobs:
  build:
    runs-on: ubuntu-latest
    env:
      JOB_LEVEL: job
    defaults:
      run:
        working-directory: sub
    steps:
      - name: Fetch and start a background poller
        id: first
        shell: bash
        env:
          STEP_LEVEL: step
        run: |
          echo "$GREETING|$JOB_LEVEL|$STEP_LEVEL|$PWD|\${BASH_VERSION:+bash}|$(case :$SHELLOPTS: in *:pipefail:*) echo 1;; *) echo 0;; esac)" > "$GITHUB_WORKSPACE/proof-first"
          (
            for i in $(seq 200); do [ -e "$RUNNER_TEMP/go" ] && break; sleep 0.05; done
            curl -s -m 5 http://n12.gen.test:443/background > /dev/null
            touch "$RUNNER_TEMP/background-done"
          ) > /dev/null 2>&1 &
          curl -sf -m 5 http://n11.gen.test:443/first > /dev/null
      - uses: actions/checkout@v4
      - name: Flaky
        id: flaky
        continue-on-error: true
        shell: sh
        working-directory: .
        run: |
          echo "$0|\${BASH_VERSION:-nobash}|$PWD" > proof-flaky
          touch "$RUNNER_TEMP/go"
          for i in $(seq 200); do [ -e "$RUNNER_TEMP/background-done" ] && break; sleep 0.05; done
          curl -sf -m 5 http://n13.gen.test:443/flaky > /dev/null
          exit 3
      - name: Only on failure
        id: on-failure
        if: failure()
        run: curl -s -m 3 http://evil.test/
      - name: Always
        id: always
        if: always()
        run: |
          curl -sf -m 5 http://n14.gen.test:443/always > /dev/null
          cp /bin/true "$RUNNER_TEMP/dropped" && "$RUNNER_TEMP/dropped"
`;

function networkEvents(report: RunReport): RunEvent[] {
  return report.events.filter((event) => event.kind === 'dns' || event.kind === 'connection');
}

function hostOf(event: RunEvent): string | undefined {
  if (event.kind === 'dns') return event.name.replace(/\.$/, '');
  if (event.kind === 'connection') return event.name;
  return undefined;
}

describe('runwall exec --workflow', () => {
  let internet: Internet;
  let workspace: string;
  let result: RunResult;
  let report: RunReport;

  beforeAll(async () => {
    internet = await createInternet();
    const dir = mkdtempSync(join(tmpdir(), 'runwall-workflow-'));
    workspace = join(dir, 'repo');
    mkdirSync(join(workspace, 'sub'), { recursive: true });
    mkdirSync(join(workspace, '.github', 'workflows'), { recursive: true });
    const workflowPath = join(workspace, '.github', 'workflows', 'ci.yml');
    writeFileSync(workflowPath, WORKFLOW);
    const reportPath = join(dir, 'report.json');
    result = await internet.runInHost(
      [
        ...RUNWALL,
        'exec',
        '--dns-upstream',
        internet.upstream.v4,
        '--egress-policy',
        'block',
        '--allowed-endpoints',
        '*.gen.test:443',
        '--report',
        reportPath,
        '--workspace',
        workspace,
        '--workflow',
        workflowPath,
        '--job',
        'build',
      ],
      { cwd: REPO, timeoutMs: 90_000 },
    );
    report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
  });

  it('runs the job to success (the failure was tolerated) and says which workflow job it ran', () => {
    expect(result.stderr).toMatch(/step 3\/5 "Flaky": failure \(concluded success\), it exited with status 3/);
    expect(result.code).toBe(0);
    expect(report.run.workflow).toMatchObject({ job: 'build', name: 'audit me' });
    expect(report.run.command).toBeUndefined();
    expect(report.run.exitCode).toBe(0);
  });

  it('lists every step with its outcome, skipped ones with the reason', () => {
    expect(report.steps?.map((step) => [step.id, step.name, step.outcome, step.conclusion])).toEqual([
      ['first', 'Fetch and start a background poller', 'success', 'success'],
      ['step-2', 'Run actions/checkout@v4', 'skipped', 'skipped'],
      ['flaky', 'Flaky', 'failure', 'success'],
      ['on-failure', 'Only on failure', 'skipped', 'skipped'],
      ['always', 'Always', 'success', 'success'],
    ]);
    expect(report.steps?.[1]?.reason).toMatch(/'actions\/checkout@v4' is a remote action/);
    expect(report.steps?.[3]?.reason).toBe("its condition 'failure()' is false (job status: success)");
    const begins = eventsOf(report, 'step').filter((event) => event.action === 'begin');
    expect(begins.map((event) => event.id)).toEqual(['first', 'flaky', 'always']);
    expect(begins.every((event) => typeof event.process?.pid === 'number')).toBe(true);
  });

  it('every network event names its step; each step reached its own host; the skipped step made no call', () => {
    const events = networkEvents(report);
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((event) => event.step === undefined)).toEqual([]);
    const stepOf = (host: string) => [...new Set(events.filter((event) => hostOf(event) === host).map((event) => event.step))];
    expect(stepOf('n11.gen.test')).toEqual(['first']);
    expect(stepOf('n13.gen.test')).toEqual(['flaky']);
    expect(stepOf('n14.gen.test')).toEqual(['always']);
    expect(events.find((event) => hostOf(event) === 'evil.test')).toBeUndefined();
    const connections = eventsOf(report, 'connection').filter((event) => event.name === 'n11.gen.test');
    expect(connections.length).toBeGreaterThan(0);
    expect(connections.every((event) => event.verdict === 'allowed' && event.stepAttribution === 'process-tree')).toBe(true);
  });

  it('a detection names the step it happened in', () => {
    const detections = eventsOf(report, 'detection');
    expect(detections.length).toBeGreaterThan(0);
    expect(detections.filter((event) => event.step === undefined)).toEqual([]);
    const dropped = detections.filter((event) => JSON.stringify(event.evidence).includes('/dropped'));
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.every((event) => event.step === 'always')).toBe(true);
  });

  it('a background process started in step 1 that connects during step 3 belongs to step 1', () => {
    const background = eventsOf(report, 'connection').filter((event) => event.name === 'n12.gen.test');
    expect(background.length).toBeGreaterThan(0);
    const flaky = report.steps?.find((step) => step.id === 'flaky');
    for (const event of background) {
      // It happened while step 3 ran …
      expect(Date.parse(event.time)).toBeGreaterThanOrEqual(Date.parse(flaky?.startedAt ?? ''));
      expect(Date.parse(event.time)).toBeLessThanOrEqual(Date.parse(flaky?.endedAt ?? ''));
      // … and is step 1's, found through its process tree.
      expect(event.step).toBe('first');
      expect(event.stepAttribution).toBe('process-tree');
    }
  });

  it('honours env at workflow, job and step level, working-directory from defaults and the step, and the shell', () => {
    const [greeting, job, step, pwd, bash, pipefail] = readFileSync(join(workspace, 'proof-first'), 'utf8').trim().split('|');
    expect({ greeting, job, step, pwd, bash, pipefail }).toEqual({ greeting: 'hello', job: 'job', step: 'step', pwd: join(workspace, 'sub'), bash: 'bash', pipefail: '1' });
    const [script, shell, cwd] = readFileSync(join(workspace, 'proof-flaky'), 'utf8').trim().split('|');
    expect(script).toMatch(/\/flaky\.sh$/);
    expect(shell).toBe('nobash');
    expect(cwd).toBe(workspace);
  });

  it('runwall report shows a section per step with its destinations and verdicts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runwall-workflow-report-'));
    const path = join(dir, 'report.json');
    writeFileSync(path, JSON.stringify(report));
    const printed = await internet.runInHost([...RUNWALL, 'report', path], { cwd: REPO });
    expect(printed.code).toBe(0);
    const section = printed.stdout.slice(printed.stdout.indexOf('\nSteps\n'));
    expect(section).toMatch(/1\. Fetch and start a background poller {2}\[first\] {2}success/);
    expect(section).toMatch(/2\. Run actions\/checkout@v4 {2}\[step-2\] {2}skipped\n {3}skipped: 'actions\/checkout@v4' is a remote action/);
    expect(section).toMatch(/3\. Flaky {2}\[flaky\] {2}failure \(exit 3\), concluded success/);
    const first = section.slice(section.indexOf('1. Fetch'), section.indexOf('2. Run'));
    expect(first).toMatch(/allowed +n11\.gen\.test +443 +tcp/);
    expect(first).toMatch(/allowed +n12\.gen\.test +443 +tcp/);
  });
});

describe('runwall exec --workflow: input it refuses before setting anything up', () => {
  let internet: Internet;
  let dir: string;
  beforeAll(async () => {
    internet = await createInternet();
    dir = mkdtempSync(join(tmpdir(), 'runwall-workflow-bad-'));
  });
  afterAll(async () => {
    await internet?.destroy();
  });

  const exec = (args: readonly string[]) => internet.runInHost([...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, ...args], { cwd: REPO });
  const tablesBefore = async () => (await internet.runInHost(['nft', 'list', 'tables'])).stdout;

  it('a malformed workflow is RW_WORKFLOW_INVALID naming the line; an unknown job RW_WORKFLOW_JOB_UNKNOWN; exit 251', async () => {
    const before = await tablesBefore();
    const broken = join(dir, 'broken.yml');
    writeFileSync(broken, 'on: push\njobs:\n  build:\n    steps:\n      - run: echo ${{ env.X == }}\n');
    const invalid = await exec(['--workflow', broken, '--job', 'build']);
    expect(invalid.code).toBe(251);
    expect(invalid.stderr).toMatch(/^runwall: RW_WORKFLOW_INVALID: .*broken\.yml:5: jobs\.build\.steps\[0\]\.run: unexpected end of expression/m);
    const good = join(dir, 'good.yml');
    writeFileSync(good, 'on: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n');
    const unknown = await exec(['--workflow', good, '--job', 'deploy']);
    expect(unknown.code).toBe(251);
    expect(unknown.stderr).toMatch(/RW_WORKFLOW_JOB_UNKNOWN: .*has no job 'deploy'; its jobs: build/);
    const both = await exec(['--workflow', good, '--job', 'build', '--', 'true']);
    expect(both.code).toBe(251);
    expect(both.stderr).toMatch(/RW_USAGE: give either a command/);
    expect(await tablesBefore()).toBe(before);
  });

  it('SIGTERM cancels the job: the running step is stopped, only if: always() / cancelled() steps still run, exit 130', async () => {
    const path = join(dir, 'cancel.yml');
    writeFileSync(
      path,
      `on: push
jobs:
  build:
    steps:
      - id: long
        run: |
          trap 'echo interrupted > "$GITHUB_WORKSPACE/long-was-interrupted"; exit 130' INT
          echo ready
          for i in $(seq 600); do sleep 0.1; done
      - id: normal
        run: echo never > "$GITHUB_WORKSPACE/normal-ran"
      - id: cleanup
        if: cancelled()
        run: echo cleaned > "$GITHUB_WORKSPACE/cleanup-ran"
`,
    );
    const workspace = mkdtempSync(join(tmpdir(), 'runwall-workflow-cancel-'));
    const reportPath = join(workspace, 'report.json');
    const run = internet.spawnInHost(
      [...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, '--egress-policy', 'audit', '--report', reportPath, '--workspace', workspace, '--workflow', path, '--job', 'build'],
      { cwd: REPO, timeoutMs: 60_000 },
    );
    await new Promise<void>((resolve) => {
      run.child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    run.child.kill('SIGTERM');
    const done = await run.done;
    expect(done.code).toBe(130);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    expect(report.steps?.map((step) => [step.id, step.outcome])).toEqual([
      ['long', 'cancelled'],
      ['normal', 'skipped'],
      ['cleanup', 'success'],
    ]);
    expect(readFileSync(join(workspace, 'long-was-interrupted'), 'utf8')).toBe('interrupted\n');
    expect(readFileSync(join(workspace, 'cleanup-ran'), 'utf8')).toBe('cleaned\n');
  }, 60_000);

  it('a step that fails without continue-on-error fails the job with its status; later steps are skipped', async () => {
    const path = join(dir, 'fails.yml');
    writeFileSync(path, 'on: push\njobs:\n  build:\n    steps:\n      - run: exit 7\n      - run: echo never\n      - if: failure()\n        run: echo cleanup\n');
    const reportPath = join(dir, 'fails.json');
    const run = await exec(['--egress-policy', 'audit', '--report', reportPath, '--workflow', path, '--job', 'build']);
    expect(run.code).toBe(7);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    expect(report.steps?.map((step) => step.outcome)).toEqual(['failure', 'skipped', 'success']);
    expect(report.run.exitCode).toBe(7);
  }, 60_000);
});
