/**
 * The server part of `make bench` (runServerBench, called by bench/run.ts):
 * ingest throughput over HTTP on SQLite and PostgreSQL, run-list and run-page
 * latency with 100,000 runs stored, and the server's peak memory. The server
 * runs as the real `runwall server` command in its own process; the bench is
 * its client over loopback. Seeding goes through the store in-process (the
 * same ingest code, without HTTP) to keep the bench short.
 *
 * Knobs: RUNWALL_BENCH_SERVER_RUNS (100000), RUNWALL_BENCH_SERVER_PG_RUNS (25000: seeding
 * PostgreSQL run by run takes minutes on a busy 2-core machine), RUNWALL_BENCH_SERVER_EVENTS_PER_RUN
 * (10), RUNWALL_BENCH_SERVER_PG=0 skips PostgreSQL.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { RunEvent, RunMetadata, Verdict } from '../src/protocol/index.js';
import { bootstrap, openStore, type DatabaseSpec } from '../src/server/index.js';
import { REPO, runwallCommand } from './bench-env.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { cleanEnv, cpuSecondsOf, peakRssOf, start, type Started } from './processes.js';
import { median, percentile } from './stats.js';

const MIB = 1024 * 1024;
const execFileAsync = promisify(execFile);

type Log = (line: string) => void;
const defaultLog: Log = (line) => process.stderr.write(`[bench server] ${line}\n`);

function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number, not '${text}'`);
  return value;
}

// ---- synthetic runs: 50 repositories × 3 workflows × 4 jobs, a pool of destinations, a few blocked ----

const NAMES = Array.from({ length: 40 }, (_, i) => `dep${i}.registry.test`);
const T0 = Date.parse('2026-01-01T00:00:00Z');

export function metadataForProbe(i: number, runs: number): RunMetadata {
  return metadata(i, runs);
}

function metadata(i: number, runs: number): RunMetadata {
  const repo = `acme/repo-${i % 50}`;
  const startedAt = new Date(T0 + Math.floor((i / runs) * 300 * 86400_000)).toISOString();
  return {
    runId: `bench-${i}`,
    surface: 'agent',
    tool: { name: 'runwall', version: '0.1.0' },
    host: `runner-${i % 7}`,
    startedAt,
    endedAt: new Date(Date.parse(startedAt) + 90_000).toISOString(),
    exitCode: 0,
    ci: { provider: 'github', repository: repo, workflow: ['ci.yml', 'release.yml', 'nightly.yml'][i % 3] ?? 'ci.yml', job: ['build', 'test', 'lint', 'deploy'][i % 4] ?? 'build', runId: String(i) },
  };
}

/** `count` events of one run: DNS and connection pairs to a job's usual destinations, with process and step. */
export function runEventsForProbe(i: number, count: number, baseMs: number): RunEvent[] {
  return runEvents(i, count, baseMs);
}

function runEvents(i: number, count: number, baseMs: number): RunEvent[] {
  const events: RunEvent[] = [];
  const verdictFor = (k: number): Verdict => (i % 100 === 0 && k === 0 ? 'attack-blocked' : i % 20 === 0 && k === 1 ? 'blocked' : 'allowed');
  for (let seq = 1; seq <= count; seq++) {
    const k = Math.floor((seq - 1) / 2);
    const name = NAMES[(i % 12) + (k % 8)] ?? 'x.test';
    const verdict = verdictFor(k);
    const time = new Date(baseMs + seq * 50).toISOString();
    const process = { pid: 4000 + (k % 5), exe: k % 2 ? '/usr/bin/node' : '/usr/bin/git', ancestry: [{ pid: 100, exe: '/usr/bin/bash' }] };
    const rule = verdict === 'allowed' ? { source: 'allowed-endpoints' as const, entry: `${name}:443`, explanation: `${name} is allowed` } : { source: 'default-deny' as const, explanation: `${name} matches no allowed endpoint` };
    if (seq % 2 === 1) {
      events.push({ kind: 'dns', seq, time, name, qtype: 'A', transport: 'udp', client: '10.0.0.2:5353', verdict, rule, rcode: 'NOERROR', answers: [{ name, type: 'A', ttl: 60, data: '198.51.100.7' }], admitted: ['198.51.100.7:443'], process, step: `step-${k % 3}` });
    } else {
      events.push({ kind: 'connection', seq, time, protocol: 'tcp', family: 4, destination: '198.51.100.7', port: 443, name, verdict, rule, count: 1, process, step: `step-${k % 3}` });
    }
  }
  return events;
}

// ---- the server as a separate process ----

interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  readonly output: string;
  stop(): Promise<number | undefined>;
}

async function startServerProcess(database: string, cwd: string): Promise<ServerProcess> {
  const started: Started = start([...runwallCommand().argv, 'server', '--port', '0', '--database', database], {
    timeoutMs: 20 * 60_000,
    cwd,
    env: cleanEnv(),
    sampleRssEveryMs: 250,
  });
  let out = '';
  started.child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  started.child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runwall server did not start in 60 s: ${out}`)), 60_000);
    const check = () => {
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] && (!out.includes('First start') || /Sign in:.*\n/.test(out))) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    started.child.stdout?.on('data', check);
    void started.done.then((f) => {
      clearTimeout(timer);
      reject(new Error(`runwall server exited ${f.code}: ${f.stderr || f.stdout}`));
    });
  });
  const pid = started.child.pid ?? 0;
  return {
    url,
    pid,
    get output() {
      return out;
    },
    async stop() {
      const peak = peakRssOf(pid);
      started.child.kill('SIGTERM');
      const finished = await started.done;
      return Math.max(peak ?? 0, finished.peakRssBytes ?? 0) || undefined;
    },
  };
}

async function call(url: string, key: string, method: 'GET' | 'POST', path: string, body?: string): Promise<unknown> {
  const response = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const began = performance.now();
  const result = await work();
  return [performance.now() - began, result];
}

// ---- measurements ----

/**
 * Events/s of batches of 1000 posted over HTTP, two uploads in flight at a time (two agents), and
 * the same per second of the server's own CPU time: on a shared machine the second figure is the
 * one that does not depend on what else runs.
 */
async function measureIngest(server: ServerProcess, key: string, label: string, batches: number, offset: number): Promise<BenchRow[]> {
  const bodies = Array.from({ length: batches }, (_, b) => {
    const i = offset + b;
    const run = metadata(i, offset + batches);
    return { runId: `ingest-${label}-${b}`, body: JSON.stringify({ run: { ...run, runId: `ingest-${label}-${b}` }, events: runEvents(i, 1000, Date.parse(run.startedAt)) }) };
  });
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const item = bodies[next++];
      if (item) await call(server.url, key, 'POST', `/runs/${item.runId}/events`, item.body);
    }
  };
  const cpuBefore = cpuSecondsOf(server.pid);
  const [ms] = await timed(() => Promise.all([worker(), worker()]));
  const cpuAfter = cpuSecondsOf(server.pid);
  const eventsPerSecond = (batches * 1000) / (ms / 1000);
  const rows: BenchRow[] = [];
  if (cpuBefore !== undefined && cpuAfter !== undefined && cpuAfter > cpuBefore) {
    rows.push(
      benchRow({
        name: `server: ingest per CPU-second of the server, ${label}`,
        value: Math.round((batches * 1000) / (cpuAfter - cpuBefore)),
        unit: 'events/s',
        note: `the same uploads divided by the server process's user+system time (${(cpuAfter - cpuBefore).toFixed(1)} s)${label === 'PostgreSQL' ? '; PostgreSQL\'s own processes not counted' : ''}`,
      }),
    );
  }
  rows.unshift(benchRow({
    name: `server: ingest over HTTP, ${label}`,
    value: Math.round(eventsPerSecond),
    unit: 'events/s',
    ...(label === 'SQLite' ? { goal: { on: 'value', bound: 'at-least', limit: 50_000 } } : {}),
    note: `${batches} batches of 1000 events (${(bodies[0]?.body.length ?? 0) >> 10} KiB each), 2 in flight, into a database already holding the seeded runs; load average ${loadavg()[0]?.toFixed(1)}`,
  }));
  return rows;
}

async function samples(count: number, work: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await timed(() => work(i)))[0]);
  return out;
}

function latencyRow(name: string, values: number[], note: string, limitMs?: number): BenchRow {
  return benchRow({
    name,
    value: Number(median(values).toFixed(2)),
    unit: 'ms',
    ...(limitMs === undefined ? {} : { goal: { on: 'value', bound: 'at-most', limit: limitMs } }),
    note: `median of ${values.length}; p95 ${percentile(values, 95).toFixed(1)} ms. ${note}`,
  });
}

async function measureReads(server: ServerProcess, key: string, label: string, runs: number, bigRunId: string): Promise<BenchRow[]> {
  const get = (path: string) => call(server.url, key, 'GET', path);
  await get('/runs?limit=50'); // warm the connection and caches as a user's first click would
  const rows: BenchRow[] = [];
  rows.push(latencyRow(`server: run list, newest 50, ${label}`, await samples(40, () => get('/runs?limit=50')), `${runs} runs stored`, 100));
  rows.push(latencyRow(`server: run list filtered by repo, ${label}`, await samples(40, (i) => get(`/runs?limit=50&repo=acme/repo-${(i * 7) % 50}`)), 'one of 50 repositories'));
  rows.push(latencyRow(`server: run list filtered by verdict, ${label}`, await samples(40, () => get('/runs?limit=50&verdict=attack-blocked')), '1% of runs are Attack Blocked'));
  rows.push(
    latencyRow(
      `server: run list filtered by repo+workflow+job+time, ${label}`,
      await samples(40, (i) => get(`/runs?limit=50&repo=acme/repo-${i % 50}&workflow=ci.yml&job=build&from=2026-03-01&to=2026-09-01`)),
      'all filters at once',
    ),
  );
  let cursor: string | null = null;
  const deep = await samples(40, async () => {
    const page = (await get(`/runs?limit=50${cursor ? `&cursor=${cursor}` : ''}`)) as { next: string | null };
    cursor = page.next;
  });
  rows.push(latencyRow(`server: run list, next pages 1-40, ${label}`, deep, 'following the keyset cursor'));
  const runPage = (runId: string) =>
    Promise.all([get(`/runs/${runId}`), get(`/runs/${runId}/timeline?buckets=60`), get(`/runs/${runId}/events?kind=http&limit=1000`), get(`/runs/${runId}/events?kind=agent&limit=1000`), get(`/runs/${runId}/network`)]);
  rows.push(latencyRow(`server: run page (summary + network), ${label}`, await samples(40, (i) => runPage(`bench-${(i * 2477) % runs}`)), 'the 5 requests the Summary and Network tabs make, in parallel; a typical run', 200));
  rows.push(latencyRow(`server: run page of a 20,000-event run, ${label}`, await samples(10, () => runPage(bigRunId)), 'same requests, one large run'));
  return rows;
}

/** Seeds `runs` runs through the store (the ingest code without HTTP), `concurrency` at a time. */
async function seed(spec: DatabaseSpec, runs: number, perRun: number, concurrency: number, log: Log): Promise<{ key: string; seconds: number }> {
  const { store } = await openStore(spec);
  try {
    const first = await bootstrap(store);
    if (!first) throw new Error('seed needs an empty database');
    const began = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < runs) {
        const i = next++;
        const run = metadata(i, runs);
        await store.ingest(1, { runId: run.runId, metadata: run, events: runEvents(i, perRun, Date.parse(run.startedAt)) }, Date.now());
        if (i > 0 && i % 20_000 === 0) log(`  seeded ${i} runs`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    // One large run for the worst-case run page.
    const big = metadata(runs, runs + 1);
    const bigEvents = runEvents(runs, 20_000, Date.parse(big.startedAt));
    for (let at = 0; at < bigEvents.length; at += 5000) await store.ingest(1, { runId: 'bench-big', metadata: { ...big, runId: 'bench-big' }, events: bigEvents.slice(at, at + 5000) }, Date.now());
    return { key: first.apiKey, seconds: (performance.now() - began) / 1000 };
  } finally {
    await store.close();
  }
}

async function benchDatabase(label: string, spec: DatabaseSpec, database: string, cwd: string, runs: number, perRun: number, log: Log): Promise<BenchRow[]> {
  log(`${label}: seeding ${runs} runs of ${perRun} events`);
  // Seeding is set-up, not a measurement: PostgreSQL commits it without waiting for the disk.
  const seedSpec: DatabaseSpec = spec.kind === 'postgres' ? { kind: 'postgres', url: `${spec.url}?options=${encodeURIComponent('-c synchronous_commit=off')}` } : spec;
  const { key, seconds } = await seed(seedSpec, runs, perRun, label === 'SQLite' ? 1 : 8, log);
  const rows: BenchRow[] = [
    benchRow({ name: `server: seeding through the store, ${label}`, value: Math.round((runs * perRun + 20_000) / seconds), unit: 'events/s', note: `${runs} runs × ${perRun} events + one of 20,000 in ${seconds.toFixed(0)} s, in-process, no HTTP (${label === 'SQLite' ? 'one writer' : '8 concurrent'})` }),
  ];
  log(`${label}: starting runwall server`);
  const server = await startServerProcess(database, cwd);
  try {
    log(`${label}: run list and run page latency`);
    rows.push(...(await measureReads(server, key, label, runs, 'bench-big')));
    log(`${label}: ingest over HTTP`);
    rows.push(...(await measureIngest(server, key, label, 200, runs + 1)));
  } finally {
    const peak = await server.stop();
    if (peak !== undefined) {
      rows.push(benchRow({ name: `server: peak RSS of runwall server, ${label}`, value: Number((peak / MIB).toFixed(1)), unit: 'MiB', goal: { on: 'value', bound: 'at-most', limit: 400 }, note: `VmHWM over the reads and the HTTP ingest above${label === 'SQLite' ? "; includes SQLite's 64 MiB page cache" : ''}` }));
    }
  }
  return rows;
}

export async function runServerBench(log: Log = defaultLog): Promise<BenchRow[]> {
  const runs = envInt('RUNWALL_BENCH_SERVER_RUNS', 100_000);
  const perRun = envInt('RUNWALL_BENCH_SERVER_EVENTS_PER_RUN', 10);
  const dir = mkdtempSync(join(tmpdir(), 'runwall-bench-server-'));
  const rows: BenchRow[] = [];
  try {
    const path = join(dir, 'runwall.db');
    rows.push(...(await benchDatabase('SQLite', { kind: 'sqlite', path }, `sqlite:${path}`, dir, runs, perRun, log)));
    if (process.env.RUNWALL_BENCH_SERVER_PG !== '0') {
      log('PostgreSQL: starting a throw-away cluster (fsync on)');
      const { stdout } = await execFileAsync(join(REPO, 'scripts/pg-start.sh'), [], { env: { ...process.env, RUNWALL_PG_DURABLE: '1' }, timeout: 120_000 });
      const pgDir = /RUNWALL_PG_DIR=(\S+)/.exec(stdout)?.[1];
      const url = /RUNWALL_PG_URL=(\S+)/.exec(stdout)?.[1];
      if (!pgDir || !url) throw new Error(`pg-start.sh printed no cluster: ${stdout}`);
      try {
        const pgRuns = envInt('RUNWALL_BENCH_SERVER_PG_RUNS', 25_000);
        rows.push(...(await benchDatabase('PostgreSQL', { kind: 'postgres', url }, url, dir, pgRuns, perRun, log)));
      } finally {
        await execFileAsync(join(REPO, 'scripts/pg-stop.sh'), [pgDir], { timeout: 60_000 });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

// `npx tsx bench/server.ts` runs this part alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runServerBench();
  for (const row of rows) process.stdout.write(`${row.name.padEnd(62)} ${String(row.value).padStart(10)} ${row.unit.padEnd(9)} ${row.note ?? ''}\n`);
}
