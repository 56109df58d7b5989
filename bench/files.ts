/**
 * The file sensor's cost, on a tmpfs of its own (the disk here is throttled at
 * times; see mechanisms.md), runs alternating without and with the sensor and
 * medians taken:
 *   - an install-like write: 10,000 files in 500 directories under node_modules/, each created and
 *     written by a shell, timed as the shell sees it; with the sensor watching
 *     the workspace (fanotify, filesystem mark, events handled in this process);
 *   - events lost: what the sensor counted against what was written (goal 0);
 *   - events in the report for those 10,000 files (folding keeps it small);
 *   - start-up: snapshot of a git repo with 2,000 tracked files (walk, git
 *     ls-files, sha256 of each), i.e. the delay before the job's first exec.
 * The sensor runs in-process through its factory, as `runwall exec` starts it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventPipeline } from '../src/agent/pipeline/event-pipeline.js';
import { ATTRIBUTION_DELAY_MS, startFileSensor } from '../src/agent/sensors/file/file-sensor.js';
import { resolvePolicy } from '../src/policy/index.js';
import type { RunEvent } from '../src/protocol/index.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { median } from './stats.js';

const ROUNDS = 5;
const DIRECTORIES = 500;
const FILES_PER_DIRECTORY = 20;
const FILES = DIRECTORIES * FILES_PER_DIRECTORY;
const SOURCE_FILES = 2000;
const JOB_TIMEOUT_MS = 120_000;

/** The install-like job: prints its own duration in ms (so the shell's start-up is not counted). */
const WRITE_JOB = `
start=$(date +%s%N)
d=0
while [ $d -lt ${DIRECTORIES} ]; do
  mkdir -p node_modules/p$d
  f=0
  while [ $f -lt ${FILES_PER_DIRECTORY} ]; do echo "module.exports = $d$f;" > node_modules/p$d/f$f.js; f=$((f+1)); done
  d=$((d+1))
done
echo $(( ($(date +%s%N) - start) / 1000000 ))
`;

function runJob(cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', WRITE_JOB], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), JOB_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const ms = Number(out.trim());
      if (code !== 0 || !Number.isFinite(ms)) reject(new Error(`the write job failed (status ${code}): ${out.slice(0, 200)}`));
      else resolve(ms);
    });
  });
}

function context(pipeline: EventPipeline, workspace: string) {
  return {
    pipeline,
    scope: { kind: 'agent' as const, agentPid: process.pid },
    policy: resolvePolicy({ flags: {}, defaults: { dnsUpstream: '127.0.0.1' } }),
    workspace,
    shared: new Map<string, unknown>(),
  };
}

interface SensorRun {
  readonly jobMs: number;
  readonly startMs: number;
  readonly stopMs: number;
  readonly created: number;
  readonly written: number;
  readonly fileEvents: number;
  readonly problems: number;
}

async function withSensor(workspace: string): Promise<SensorRun> {
  const pipeline = new EventPipeline();
  const events: RunEvent[] = [];
  pipeline.subscribe((event) => events.push(event));
  const started = performance.now();
  const sensor = await startFileSensor(context(pipeline, workspace));
  if (!sensor) throw new Error('the file sensor did not start');
  const startMs = performance.now() - started;
  const jobMs = await runJob(workspace);
  const stopping = performance.now();
  await sensor.stop();
  const stopMs = performance.now() - stopping;
  let created = 0;
  let written = 0;
  let fileEvents = 0;
  for (const event of events) {
    if (event.kind !== 'file') continue;
    fileEvents += 1;
    if (event.action === 'create') created += event.count ?? 1;
    if (event.action === 'write') written += event.count ?? 1;
  }
  return { jobMs, startMs, stopMs, created, written, fileEvents, problems: sensor.problems?.length ?? 0 };
}

/** A git repo with SOURCE_FILES tracked files of 4 KiB, and the time the sensor takes to start on it. */
async function snapshotStartMs(dir: string): Promise<number> {
  const repo = join(dir, 'repo');
  for (let i = 0; i < SOURCE_FILES; i++) {
    const sub = join(repo, `src/m${i % 50}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.ts`), `export const v${i} = ${i};\n`.padEnd(4096, '/'));
  }
  execFileSync('git', ['-C', repo, 'init', '-q']);
  execFileSync('git', ['-C', repo, 'add', '.']);
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pipeline = new EventPipeline();
    const started = performance.now();
    const sensor = await startFileSensor(context(pipeline, repo));
    samples.push(performance.now() - started);
    await sensor?.stop();
  }
  return median(samples);
}

export async function runFilesBench(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), `runwall-bench-files-${process.pid}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m', `runwall-bench-files-${process.pid}`, dir]);
  try {
    const plain: number[] = [];
    const watched: SensorRun[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const a = join(dir, `plain-${round}`);
      mkdirSync(a);
      plain.push(await runJob(a));
      rmSync(a, { recursive: true });
      const b = join(dir, `watched-${round}`);
      mkdirSync(b);
      watched.push(await withSensor(b));
      rmSync(b, { recursive: true });
    }
    const lost = Math.max(...watched.map((r) => Math.max(0, FILES - r.created) + Math.max(0, FILES - r.written)));
    const problems = Math.max(...watched.map((r) => r.problems));
    const startMs = await snapshotStartMs(dir);
    return [
      benchRow({
        name: `files: ${FILES.toLocaleString('en')}-file write on tmpfs, with the file sensor`,
        value: median(watched.map((r) => r.jobMs)),
        unit: 'ms',
        baseline: median(plain),
        note: `${DIRECTORIES} directories under node_modules/; job's own time, median of ${ROUNDS}, runs alternating; baseline: no sensor`,
        goal: { on: 'ratio', bound: 'at-most', limit: 1.5 },
      }),
      benchRow({
        name: 'files: events lost in that write',
        value: lost,
        unit: 'events',
        note: `creates and writes counted by the sensor vs ${FILES} + ${FILES} made (worst round); ${problems} problems reported`,
        goal: { on: 'value', bound: 'at-most', limit: 0 },
      }),
      benchRow({
        name: 'files: file events in the report for that write',
        value: Math.max(...watched.map((r) => r.fileEvents)),
        unit: 'events',
        note: 'non-source changes folded per directory, action and program',
        goal: { on: 'value', bound: 'at-most', limit: 100 },
      }),
      benchRow({
        name: 'files: sensor stop (drain and fold) after that write',
        value: median(watched.map((r) => r.stopMs)),
        unit: 'ms',
        note: `includes the ${ATTRIBUTION_DELAY_MS} ms wait for process attribution`,
      }),
      benchRow({
        name: `files: sensor start on a git repo of ${SOURCE_FILES.toLocaleString('en')} tracked files`,
        value: startMs,
        unit: 'ms',
        note: 'walk, git ls-files, sha256 of each file (4 KiB); the delay before the job starts',
        goal: { on: 'value', bound: 'at-most', limit: 1000 },
      }),
    ];
  } finally {
    try {
      execFileSync('umount', ['-l', dir]);
    } catch {
      // Not mounted.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
