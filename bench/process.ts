/**
 * The process sensor's cost on an exec-heavy job: a shell starting /bin/true
 * 2,000 times, timed as the shell sees it, runs alternating without and with
 * the sensor and medians taken. The sensor runs in-process through its
 * factory in agent scope (the whole machine watched, no runner: every exec is
 * the job's, so every one becomes an event — the most it does per exec):
 *   - the job's time with the sensor against without (audit's per-exec record
 *     with argv and cwd in the kernel, and this process reading both streams
 *     on a 2-core machine);
 *   - execs recorded with their argv (goal: every one);
 *   - the sensor's own CPU time per exec, alone and with the detector (both
 *     read audit through one reader: the detector must not add a second parse
 *     of every exec's records);
 *   - start-up (audit rules, connector, the /proc scan of the machine).
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { EventPipeline } from '../src/agent/pipeline/event-pipeline.js';
import { startDetectSensor } from '../src/agent/sensors/detect/detect-sensor.js';
import { startProcessSensor } from '../src/agent/sensors/process/index.js';
import { resolvePolicy } from '../src/policy/index.js';
import type { RunEvent } from '../src/protocol/index.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { median } from './stats.js';

const ROUNDS = 5;
const EXECS = 2000;
const JOB_TIMEOUT_MS = 120_000;
/** A mark in every exec's argv, so this job's execs are told from the rest of the machine's. */
const MARK = `runwall-bench-${process.pid}`;

/** Prints its own duration in ms (so the shell's start-up is not counted). */
const EXEC_JOB = `
start=$(date +%s%N)
i=0
while [ $i -lt ${EXECS} ]; do /bin/true ${MARK} $i; i=$((i+1)); done
echo $(( ($(date +%s%N) - start) / 1000000 ))
`;

function runJob(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', EXEC_JOB], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), JOB_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const ms = Number(out.trim());
      if (code !== 0 || !Number.isFinite(ms)) reject(new Error(`the exec job failed (status ${code}): ${out.slice(0, 200)}`));
      else resolve(ms);
    });
  });
}

interface SensorRun {
  readonly jobMs: number;
  readonly startMs: number;
  readonly recorded: number;
  readonly cpuUsPerExec: number;
  readonly problems: number;
}

async function withSensor(detector: boolean): Promise<SensorRun> {
  const pipeline = new EventPipeline();
  const events: RunEvent[] = [];
  pipeline.subscribe((event) => events.push(event));
  const started = performance.now();
  const context = {
    pipeline,
    // No agent process to leave out: the job is this process's child, and must count as the job.
    scope: { kind: 'agent', agentPid: 0 } as const,
    policy: resolvePolicy({ flags: {}, defaults: { dnsUpstream: '127.0.0.1' } }),
    workspace: null,
    shared: new Map<string, unknown>(),
  };
  const sensor = await startProcessSensor(context);
  if (!sensor) throw new Error('the process sensor did not start');
  const startMs = performance.now() - started;
  const detect = detector ? await startDetectSensor(context) : null;
  const cpu = process.cpuUsage();
  const jobMs = await runJob();
  await detect?.stop();
  await sensor.stop();
  const used = process.cpuUsage(cpu);
  const seen = new Set<string>();
  for (const event of events) {
    if (event.kind === 'process' && event.action === 'exec' && event.argv?.[1] === MARK) seen.add(event.argv[2] ?? '');
  }
  const problems = events.filter((e) => e.kind === 'agent' && e.action === 'error').length;
  return { jobMs, startMs, recorded: seen.size, cpuUsPerExec: (used.user + used.system) / EXECS, problems };
}

export async function runProcessBench(): Promise<BenchRow[]> {
  const plain: number[] = [];
  const watched: SensorRun[] = [];
  const withDetector: SensorRun[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    plain.push(await runJob());
    watched.push(await withSensor(false));
    withDetector.push(await withSensor(true));
  }
  const problems = Math.max(...watched.map((r) => r.problems));
  return [
    benchRow({
      name: `process: ${EXECS.toLocaleString('en')} execs (a shell loop of /bin/true), with the process sensor`,
      value: median(watched.map((r) => r.jobMs)),
      unit: 'ms',
      baseline: median(plain),
      note: `job's own time, median of ${ROUNDS}, runs alternating; baseline: no sensor; sensor in agent scope (every exec an event)`,
      goal: { on: 'ratio', bound: 'at-most', limit: 1.5 },
    }),
    benchRow({
      name: 'process: execs recorded with their argv',
      value: Math.min(...watched.map((r) => r.recorded)),
      unit: 'execs',
      note: `of ${EXECS} (worst round); ${problems} problems reported (lost events would be one)`,
      goal: { on: 'value', bound: 'at-least', limit: EXECS },
    }),
    benchRow({
      name: 'process: sensor CPU per exec',
      value: median(watched.map((r) => r.cpuUsPerExec)),
      unit: 'µs',
      note: 'this process (user + system) while the job ran, divided by its execs; the machine’s other execs are handled too',
    }),
    benchRow({
      name: 'process: sensor CPU per exec, with the detector too',
      value: median(withDetector.map((r) => r.cpuUsPerExec)),
      unit: 'µs',
      baseline: median(watched.map((r) => r.cpuUsPerExec)),
      note: 'both read audit through one reader, records routed by rule key before parsing; baseline: the process sensor alone',
      goal: { on: 'ratio', bound: 'at-most', limit: 1.2 },
    }),
    benchRow({
      name: 'process: sensor start',
      value: median(watched.map((r) => r.startMs)),
      unit: 'ms',
      note: 'audit rules and reader, proc connector, /proc scan of the machine (agent scope)',
      goal: { on: 'value', bound: 'at-most', limit: 1000 },
    }),
  ];
}
