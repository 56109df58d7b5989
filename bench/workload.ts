/**
 * Two jobs, each run (a) plain in the baseline job namespace (veth + NAT, the upstream
 * as its resolver, no rules) and (b) under `runwall exec --egress-policy block`, runs
 * alternating a, b, a, b, ... and medians taken:
 *   - connection-heavy: REQUESTS short HTTP requests, each to a fresh name looked up
 *     through the system resolver (getaddrinfo → /etc/resolv.conf) on a new connection;
 *   - bulk: one BULK_BYTES download with curl.
 * The job's own time (what it measures inside) is held to the goal; the end-to-end
 * time (including runwall's set-up and teardown) is shown beside it.
 * Both use IPv4 only, so both paths are the same (the baseline namespace has no IPv6).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchRow, type BenchRow } from './bench-row.js';
import { REPO, ZONE_UPSTREAM, resolvConfFor, type BenchEnv } from './bench-env.js';
import { cpuSecondsBetween, run, type Finished } from './processes.js';
import { reportTrouble } from './report-trouble.js';
import { median } from './stats.js';

const ROUNDS = 3;
const REQUESTS = 3000;
const CONCURRENCY = 32;
const BULK_BYTES = 1_000_000_000;
const RSS_SAMPLE_MS = 50;
const MIB = 1024 * 1024;
const JOB_BUDGET_MS = 60_000;

/** The connection-heavy job. Plain CommonJS, so it runs with nothing but node. Prints one JSON line. */
const HTTP_BURST_CLIENT = `
const http = require('node:http');
const [count, concurrency, port, budgetMs] = process.argv.slice(2).map(Number);
const started = process.hrtime.bigint();
const failures = {};
let next = 0;
let ok = 0;
const startedAt = Date.now();
const report = () => {
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ ok, failures, ms: Number(process.hrtime.bigint() - started) / 1e6, startedAt, cpuMs: (cpu.user + cpu.system) / 1000 }));
};
const deadline = setTimeout(() => { report(); process.exit(3); }, budgetMs);
function one(i) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (failure) => {
      if (settled) return;
      settled = true;
      if (failure === undefined) ok++; else failures[failure] = (failures[failure] || 0) + 1;
      resolve();
    };
    const request = http.get({ host: 'n' + i + '.gen.test', port, path: '/', family: 4, agent: false, timeout: 5000 }, (response) => {
      response.resume();
      response.on('end', () => done(response.statusCode === 200 ? undefined : 'http ' + response.statusCode));
      response.on('error', (error) => done(error.code || error.message));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => done(error.code || error.message));
  });
}
async function worker() { while (next < count) await one(next++); }
Promise.all(Array.from({ length: concurrency }, worker)).then(() => { clearTimeout(deadline); report(); });
`;

interface JobRun {
  /** What the job measured itself, ms. */
  readonly jobMs: number;
  /** It did not do its work (timed out, failed, short download): its times do not count. */
  readonly failed: boolean;
  readonly wallMs: number;
  readonly peakRssBytes?: number;
  /** The job's own CPU time, ms (connection-heavy job only). */
  readonly jobCpuMs?: number;
  /** runwall's CPU time while the job ran (from its start to its end as the job saw them), ms. */
  readonly runwallCpuMs?: number;
  /** Wall-clock time the job started (Date.now()), when it says. */
  readonly startedAtMs?: number;
  /** Anything that went wrong (failed requests, short download), for the note. */
  readonly problem?: string;
}

interface Job {
  readonly label: string;
  readonly argv: readonly string[];
  /** Reads the job's own figure from its output. */
  parse(finished: Finished): JobRun;
}

export interface WorkloadBenchResult {
  readonly rows: readonly BenchRow[];
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

function failed(finished: Finished, what: string): string | undefined {
  if (finished.timedOut) return `${what} timed out`;
  if (finished.code !== 0) return `${what} exited ${finished.code ?? finished.signal}: ${lastLine(finished.stderr).slice(0, 160)}`;
  return undefined;
}

function httpBurstJob(env: BenchEnv, count: number): Job {
  const client = join(env.dir, 'http-burst.cjs');
  writeFileSync(client, HTTP_BURST_CLIENT);
  return {
    label: `${count.toLocaleString('en-US')} HTTP requests`,
    argv: [process.execPath, client, String(count), String(CONCURRENCY), '443', String(JOB_BUDGET_MS - 5_000)],
    parse: (finished) => {
      let figures: { ok: number; failures: Record<string, number>; ms: number; startedAt: number; cpuMs: number };
      try {
        figures = JSON.parse(lastLine(finished.stdout)) as typeof figures;
      } catch {
        return { jobMs: NaN, failed: true, wallMs: finished.wallMs, problem: failed(finished, 'job') ?? 'job printed no figures' };
      }
      const failures = Object.entries(figures.failures).map(([why, n]) => `${n}× ${why}`);
      const exit = failed(finished, 'job');
      const problem = exit ?? (failures.length > 0 ? `${count - figures.ok} of ${count} failed: ${failures.join(', ')}` : undefined);
      return {
        jobMs: figures.ms,
        failed: exit !== undefined,
        wallMs: finished.wallMs,
        jobCpuMs: figures.cpuMs,
        startedAtMs: figures.startedAt,
        ...(problem ? { problem } : {}),
      };
    },
  };
}

function bulkJob(bytes: number): Job {
  return {
    label: `${bytes / 1e9} GB download`,
    argv: ['curl', '-4', '-s', '-m', '60', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', `http://n7.gen.test:443/bytes/${bytes}`],
    parse: (finished) => {
      const [status, size, seconds] = lastLine(finished.stdout).split(' ');
      const problem = failed(finished, 'curl') ?? (status !== '200' || Number(size) !== bytes ? `got HTTP ${status}, ${size} of ${bytes} bytes` : undefined);
      return { jobMs: Number(seconds) * 1000, failed: problem !== undefined, wallMs: finished.wallMs, ...(problem ? { problem } : {}) };
    },
  };
}

async function plainRun(env: BenchEnv, job: Job): Promise<JobRun> {
  const finished = await run(env.inBaseJob(resolvConfFor(env, ZONE_UPSTREAM), job.argv), { cwd: REPO, timeoutMs: JOB_BUDGET_MS });
  return job.parse(finished);
}

function readReport(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  } finally {
    rmSync(path, { force: true });
  }
}

/** Under runwall, with a report as a user would ask for one; anything it blocked or had trouble with goes in the note. */
async function runwallRun(env: BenchEnv, job: Job): Promise<JobRun> {
  const reportPath = join(env.dir, 'exec-report.json');
  const finished = await run(
    [
      ...env.runwall.argv,
      'exec',
      '--dns-upstream',
      ZONE_UPSTREAM,
      '--egress-policy',
      'block',
      '--allowed-endpoints',
      '*.gen.test:443',
      '--report',
      reportPath,
      '--',
      ...job.argv,
    ],
    { netns: env.hostNs, cwd: REPO, timeoutMs: JOB_BUDGET_MS + 30_000, sampleRssEveryMs: RSS_SAMPLE_MS },
  );
  const parsed = job.parse(finished);
  const trouble = reportTrouble(readReport(reportPath), 160);
  const problem = [parsed.problem, trouble && `runwall reported ${trouble}`].filter((p) => p).join('; ');
  const runwallCpuSeconds =
    parsed.startedAtMs !== undefined && finished.cpuSamples ? cpuSecondsBetween(finished.cpuSamples, parsed.startedAtMs, parsed.startedAtMs + parsed.jobMs) : undefined;
  return {
    ...parsed,
    ...(problem !== '' ? { problem } : {}),
    ...(runwallCpuSeconds !== undefined ? { runwallCpuMs: runwallCpuSeconds * 1000 } : {}),
    ...(finished.peakRssBytes !== undefined ? { peakRssBytes: finished.peakRssBytes } : {}),
  };
}

interface Compared {
  readonly plain: readonly JobRun[];
  readonly runwall: readonly JobRun[];
}

async function compare(env: BenchEnv, job: Job, log: (line: string) => void): Promise<Compared> {
  const plain: JobRun[] = [];
  const runwall: JobRun[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`workload: ${job.label}, round ${round + 1} of ${ROUNDS} (plain, then runwall exec)`);
    const pair = [await plainRun(env, job), await runwallRun(env, job)] as const;
    plain.push(pair[0]);
    runwall.push(pair[1]);
    // A round that could not finish will not finish the next time either: keep the bench bounded.
    if (pair.some((r) => r.failed)) break;
  }
  return { plain, runwall };
}

function problemsOf(compared: Compared): string[] {
  return [
    ...compared.plain.flatMap((r) => (r.problem ? [`plain: ${r.problem}`] : [])),
    ...compared.runwall.flatMap((r) => (r.problem ? [`under runwall: ${r.problem}`] : [])),
  ];
}

function rowsFor(label: string, compared: Compared, remark: string): BenchRow[] {
  const problems = problemsOf(compared);
  const done = (runs: readonly JobRun[]): JobRun[] => runs.filter((r) => !r.failed && Number.isFinite(r.jobMs));
  const plain = done(compared.plain);
  const runwall = done(compared.runwall);
  if (plain.length === 0 || runwall.length === 0) {
    return [benchRow({ name: `${label}: job's time, runwall exec vs plain`, value: NaN, unit: 'ms', goal: { on: 'ratio', bound: 'at-most', limit: 1.03 }, note: problems.join('; ') })];
  }
  const note = [remark, `medians of ${plain.length} and ${runwall.length} runs, alternating`, ...problems].join('; ');
  return [
    benchRow({
      name: `${label}: job's time, runwall exec vs plain`,
      value: median(runwall.map((r) => r.jobMs)),
      unit: 'ms',
      baseline: median(plain.map((r) => r.jobMs)),
      goal: { on: 'ratio', bound: 'at-most', limit: 1.03 },
      note,
    }),
    benchRow({
      name: `${label}: end to end, runwall exec vs plain`,
      value: median(runwall.map((r) => r.wallMs)),
      unit: 'ms',
      baseline: median(plain.map((r) => r.wallMs)),
      note: "includes runwall's set-up and teardown (see exec: -- true)",
    }),
  ];
}

/** What runwall spends per request beside what the job itself spends: the job-time goal needs the first small beside the second. */
function cpuPerRequestRow(label: string, compared: Compared, requests: number): BenchRow[] {
  const perRequestUs = (values: readonly (number | undefined)[]): number => {
    const known = values.filter((v): v is number => v !== undefined);
    return known.length === 0 ? NaN : (median(known) / requests) * 1000;
  };
  const runwall = compared.runwall.filter((r) => !r.failed);
  const plain = compared.plain.filter((r) => !r.failed);
  return [
    benchRow({
      name: `${label}: runwall's CPU per request vs the job's own`,
      value: perRequestUs(runwall.map((r) => r.runwallCpuMs)),
      unit: 'µs',
      baseline: perRequestUs(plain.map((r) => r.jobCpuMs)),
      note: `runwall exec's process (all its threads) while the job ran, vs the job's own CPU in the plain runs (under runwall the job used ${perRequestUs(runwall.map((r) => r.jobCpuMs)).toFixed(0)} µs); the DNS and HTTP servers' CPU is in neither`,
    }),
  ];
}

export async function runWorkloadBench(env: BenchEnv, log: (line: string) => void): Promise<WorkloadBenchResult> {
  log('workload: warming up (100 requests each way)');
  const warmUp = httpBurstJob(env, 100);
  for (const [how, result] of [['plain', await plainRun(env, warmUp)], ['under runwall exec', await runwallRun(env, warmUp)]] as const) {
    if (result.failed) throw new Error(`the warm-up job failed ${how}: ${result.problem ?? 'no figures'}`);
  }

  const burst = await compare(env, httpBurstJob(env, REQUESTS), log);
  const bulk = await compare(env, bulkJob(BULK_BYTES), log);
  const peak = (compared: Compared): number => Math.max(...compared.runwall.map((r) => r.peakRssBytes ?? 0)) / MIB;
  const rssNote = `VmHWM sampled every ${RSS_SAMPLE_MS} ms while it ran (its last moments may be missed)`;
  return {
    rows: [
      ...rowsFor(`load: ${REQUESTS.toLocaleString('en-US')} HTTP requests (fresh name + connection each, ${CONCURRENCY} at a time)`, burst, 'every lookup admitted through the proxy'),
      ...cpuPerRequestRow(`load: ${REQUESTS.toLocaleString('en-US')} HTTP requests`, burst, REQUESTS),
      ...rowsFor(`load: ${BULK_BYTES / 1e9} GB HTTP download (curl)`, bulk, 'one flow, through the forward hook'),
      benchRow({ name: `rss: runwall exec peak, during ${REQUESTS.toLocaleString('en-US')} requests`, value: peak(burst), unit: 'MiB', goal: { on: 'value', bound: 'at-most', limit: 80 }, note: rssNote }),
      benchRow({ name: `rss: runwall exec peak, during the ${BULK_BYTES / 1e9} GB download`, value: peak(bulk), unit: 'MiB', goal: { on: 'value', bound: 'at-most', limit: 80 } }),
    ],
  };
}
