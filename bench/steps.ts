/**
 * The cost of steps, measured beside a baseline in the same run:
 *   - step attribution per event: the step enricher (creator-chain walk over
 *     a process table of 20 steps × 500 processes, chains 10 deep) against an
 *     enricher that sets a fixed step (the new object any enricher makes);
 *   - one step, start to end: `runwall exec --workflow` with 20 `run: true`
 *     steps in the test internet's host namespace (from the first step's
 *     begin event to the last one's end, over 20: each step's own entry into
 *     the job's namespaces, script file, files and events) against `bash -e`
 *     on the same script spawned directly, as a runner without runwall would.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StepTracker, type ProcessLike, type ProcessLookup } from '../src/agent/steps/step-tracker.js';
import type { RunReport, UnsequencedEvent } from '../src/protocol/index.js';
import { createInternet } from '../test/helpers/internet.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { median } from './stats.js';

const REPO = resolve(import.meta.dirname, '..');
const RUNWALL = ['node', '--import', 'tsx', join(REPO, 'src/cli/main.ts')];
const STEPS = 20;
const PROCESSES_PER_STEP = 500;
const CHAIN = 10;
const EVENTS = 200_000;
const ROUNDS = 3;

function syntheticTable(): { table: ProcessLookup; leaves: number[] } {
  const byPid = new Map<number, ProcessLike>();
  const leaves: number[] = [];
  const start = new Date().toISOString();
  const add = (pid: number, ppid: number): void => {
    byPid.set(pid, { pid, ppid, exe: '/usr/bin/curl', argv: ['curl'], startTime: start, endTime: null, exitCode: null });
  };
  for (let step = 0; step < STEPS; step += 1) {
    const root = 10_000 + step * 1_000;
    add(root, 1);
    for (let p = 1; p < PROCESSES_PER_STEP; p += 1) {
      // Chains CHAIN deep under the root: the walk a real build's `npm → node → sh → curl` takes.
      const pid = root + p;
      add(pid, p % CHAIN === 1 ? root : pid - 1);
      leaves.push(pid);
    }
  }
  const table: ProcessLookup = {
    get: (pid) => byPid.get(pid),
    ancestry: (pid) => {
      const out: ProcessLike[] = [];
      for (let at = byPid.get(byPid.get(pid)?.ppid ?? -1); at && out.length < 512; at = byPid.get(at.ppid)) out.push(at);
      return out;
    },
    onExec: () => () => undefined,
    onExit: () => () => undefined,
  };
  return { table, leaves };
}

function enrichmentBench(): BenchRow {
  const { table, leaves } = syntheticTable();
  const tracker = new StepTracker(table);
  const time = new Date().toISOString();
  for (let step = 0; step < STEPS; step += 1) {
    tracker.enrich({ kind: 'step', time, action: 'begin', id: `s${step}`, name: `s${step}`, process: { pid: 10_000 + step * 1_000 } });
  }
  const events: UnsequencedEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
    kind: 'dns',
    time,
    name: 'a.test',
    qtype: 'A',
    transport: 'udp',
    client: '100.64.0.2',
    verdict: 'allowed',
    rule: { source: 'allowed-endpoints', explanation: 'x' },
    rcode: 'NOERROR',
    answers: [],
    admitted: [],
    process: { pid: leaves[i % leaves.length] as number },
  }));
  // The baseline sets a step without finding it: what any enricher that names a step costs (a new object).
  const copy = (event: UnsequencedEvent): UnsequencedEvent => ({ ...event, step: 's0', stepAttribution: 'process-tree' });
  const run = (enrich: (event: UnsequencedEvent) => UnsequencedEvent): number => {
    const started = performance.now();
    let named = 0;
    for (const event of events) if (enrich(event).step !== undefined) named += 1;
    const elapsed = performance.now() - started;
    if (named !== events.length) throw new Error(`only ${named} of ${events.length} events got a step`);
    return (elapsed * 1000) / events.length;
  };
  const withTracker: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round += 1) {
    // The first round warms both up and is not counted (the tracker then answers from what it remembered).
    const b = run(copy);
    const t = run(tracker.enrich);
    if (round > 0) {
      baseline.push(b);
      withTracker.push(t);
    }
  }
  return benchRow({
    name: 'steps: step attribution per event',
    value: median(withTracker),
    unit: 'µs',
    baseline: median(baseline),
    note: `${EVENTS} events over ${STEPS} steps × ${PROCESSES_PER_STEP} processes; baseline: an enricher that sets a fixed step`,
    goal: { on: 'ratio', bound: 'at-most', limit: 1.5 },
  });
}

/** One step's bash run directly, as a runner without runwall starts it: the baseline. */
function spawnDirect(script: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', ['-e', script], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`bash exited ${code}`))));
  });
}

async function stepStartBench(log: (line: string) => void): Promise<BenchRow> {
  const internet = await createInternet();
  const dir = mkdtempSync(join(tmpdir(), 'runwall-bench-steps-'));
  try {
    const workflow = join(dir, 'steps.yml');
    writeFileSync(workflow, `on: push\njobs:\n  j:\n    steps:\n${Array.from({ length: STEPS }, () => '      - run: "true"\n').join('')}`);
    const script = join(dir, 'step.sh');
    writeFileSync(script, 'true\n');
    const perStep: number[] = [];
    const direct: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const reportPath = join(dir, `report-${round}.json`);
      const args = ['exec', '--dns-upstream', internet.upstream.v4, '--egress-policy', 'audit', '--report', reportPath, '--workflow', workflow, '--job', 'j'];
      const result = await internet.runInHost([...RUNWALL, ...args], { cwd: REPO, timeoutMs: 120_000 });
      if (result.code !== 0) throw new Error(`runwall exec --workflow failed (${result.code}): ${result.stderr.slice(-300)}`);
      const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
      const steps = report.events.filter((event) => event.kind === 'step');
      const first = Date.parse(steps[0]?.time ?? '');
      const last = Date.parse(steps.at(-1)?.time ?? '');
      perStep.push((last - first) / STEPS);
      const started = performance.now();
      for (let i = 0; i < STEPS; i += 1) await spawnDirect(script);
      direct.push((performance.now() - started) / STEPS);
      log(`steps: round ${round + 1}: ${(perStep.at(-1) ?? 0).toFixed(1)} ms a step under runwall, ${(direct.at(-1) ?? 0).toFixed(1)} ms run directly`);
    }
    return benchRow({
      name: 'steps: one workflow step, start to end',
      value: median(perStep),
      unit: 'ms',
      baseline: median(direct),
      note: `${STEPS} steps of \`run: true\` under runwall exec --workflow (first begin to last end, over ${STEPS}); baseline: bash -e on the same script spawned directly`,
      goal: { on: 'value', bound: 'at-most', limit: 100 },
    });
  } finally {
    await internet.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runStepsBench(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<BenchRow[]> {
  return [enrichmentBench(), await stepStartBench(log)];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await runStepsBench()) process.stdout.write(`${JSON.stringify(row)}\n`);
}
