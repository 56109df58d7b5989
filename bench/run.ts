/**
 * `make bench`: runwall's performance as ratios against baselines measured side by
 * side in the same run, inside namespaces the bench builds (the test internet).
 * Prints a table (measurement, baseline, ratio, goal, met or not) and writes
 * bench-out/results.json. Never asserts: a goal that is missed is reported, not failed.
 * Exits non-zero only when a section could not be measured at all.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchRow, goalStatus, parseBenchRows, type BenchRow } from './bench-row.js';
import { REPO, createBenchEnv, runwallCommand, type BenchEnv } from './bench-env.js';
import { runDnsBench } from './dns.js';
import { killAllStarted } from './processes.js';
import { runStartupBench } from './startup.js';
import { formatTable, goalSummary } from './table.js';
import { runWorkloadBench } from './workload.js';

/** Far above the ~3 minutes a run takes; only a hung step gets here. */
const BUDGET_MS = 12 * 60_000;
const OUT_DIR = join(REPO, 'bench-out');

const began = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
};

function failedRow(section: string, error: unknown): BenchRow {
  const message = error instanceof Error ? error.message : String(error);
  return benchRow({ name: `${section}: could not be measured`, value: NaN, unit: '', note: message.split('\n')[0]?.slice(0, 300) ?? '' });
}

async function section(name: string, failures: string[], body: () => Promise<readonly BenchRow[]>): Promise<readonly BenchRow[]> {
  try {
    return await body();
  } catch (error: unknown) {
    log(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    failures.push(name);
    return [failedRow(name, error)];
  }
}

/** The server engineer's bench (bench/server.ts, `runServerBench(): Promise<BenchRow[]>`), when it exists. */
async function serverRows(failures: string[]): Promise<readonly BenchRow[]> {
  if (!existsSync(join(import.meta.dirname, 'server.ts')) && !existsSync(join(import.meta.dirname, 'server.js'))) {
    log('server bench not present');
    return [];
  }
  return section('server', failures, async () => {
    // A specifier TypeScript does not resolve: the module may not exist when this is type-checked.
    const specifier = './server.js';
    const module: unknown = await import(specifier);
    const run = (module as { runServerBench?: unknown }).runServerBench;
    if (typeof run !== 'function') throw new TypeError('bench/server.ts does not export runServerBench()');
    log('server bench');
    return parseBenchRows(await (run as () => Promise<unknown>)(), 'server bench');
  });
}

async function networkRows(env: BenchEnv, failures: string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  rows.push(...(await section('dns', failures, async () => (await runDnsBench(env, log)).rows)));
  rows.push(...(await section('start-up', failures, async () => (await runStartupBench(env, log)).rows)));
  rows.push(...(await section('workload', failures, async () => (await runWorkloadBench(env, log)).rows)));
  // Memory rows last, together, whichever section measured them.
  return [...rows.filter((row) => !row.name.startsWith('rss:')), ...rows.filter((row) => row.name.startsWith('rss:'))];
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  log(`runwall from ${runwallCommand().how}; ${cpus().length} cores; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const failures: string[] = [];
  const rows: BenchRow[] = [];
  let env: BenchEnv | undefined;
  try {
    log('building the test internet, a dnsmasq upstream and the baseline job namespace');
    env = await createBenchEnv();
    rows.push(...(await networkRows(env, failures)));
  } catch (error: unknown) {
    failures.push('environment');
    rows.push(failedRow('environment', error));
  } finally {
    await env?.teardown();
  }
  rows.push(...(await serverRows(failures)));

  const loadAfter = loadavg();
  const seconds = (performance.now() - began) / 1000;
  const header = `runwall bench, ${startedAt.toISOString()}: ${cpus().length} cores, kernel ${release()}, node ${process.version}; runwall from ${runwallCommand().how}; load average ${loadBefore[0]?.toFixed(2)} at start, ${loadAfter[0]?.toFixed(2)} at end; ${seconds.toFixed(0)} s`;
  process.stdout.write(`\n${header}\n\n${formatTable(rows)}\n\n${goalSummary(rows)}${failures.length > 0 ? `; not measured: ${failures.join(', ')}` : ''}\n`);

  mkdirSync(OUT_DIR, { recursive: true });
  const packageVersion = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version?: string }).version;
  writeFileSync(
    join(OUT_DIR, 'results.json'),
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        seconds,
        runwall: { version: packageVersion, from: runwallCommand().how },
        machine: { cores: cpus().length, kernel: release(), node: process.version, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
        failures,
        rows: rows.map((row) => ({ ...row, status: goalStatus(row) })),
      },
      null,
      2,
    ) + '\n',
  );
  log(`wrote ${join(OUT_DIR, 'results.json')}`);
  return failures.length > 0 ? 1 : 0;
}

// Exit hooks (the test internet's, the bench environment's) clean up only on a normal exit.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    killAllStarted();
    process.exit(130);
  });
}
setTimeout(() => {
  log(`over its ${BUDGET_MS / 60_000} min budget: stopping`);
  process.exit(2);
}, BUDGET_MS).unref();

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
