/**
 * `make bench`: runwall's performance as ratios against baselines measured side by
 * side in the same run, inside namespaces the bench builds (the test internet).
 * Prints a table (measurement, baseline, ratio, goal, met or not) and writes
 * bench-out/results.json. Never asserts: a goal that is missed is reported, not failed.
 * Exits non-zero only when a section could not be measured at all.
 * RUNWALL_BENCH_ONLY=dns,server runs some sections only (see sections.ts);
 * RUNWALL_BENCH_CLI=.../dist/cli/main.js measures another build (see bench-env.ts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchRow, goalStatus, parseBenchResult, type BenchRow } from './bench-row.js';
import { REPO, createBenchEnv, runwallCommand, type BenchEnv } from './bench-env.js';
import { runDnsBench } from './dns.js';
import { killAllStarted } from './processes.js';
import {
  NETWORK_SECTIONS,
  OPTIONAL_NETWORK_PARTS,
  OPTIONAL_PARTS,
  parseSectionList,
  type NetworkSection,
  type OptionalPart,
  type Section,
} from './sections.js';
import { runAgentStartBench, runExecStartBench } from './startup.js';
import { formatTable, goalSummary } from './table.js';
import { runWorkloadBench } from './workload.js';

/** Far above the few minutes a run takes; only a hung step gets here. */
const BUDGET_MS = 15 * 60_000;
const OUT_DIR = join(REPO, 'bench-out');

const began = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
};

function failedRow(section: string, error: unknown): BenchRow {
  const message = error instanceof Error ? error.message : String(error);
  return benchRow({ name: `${section}: could not be measured`, value: NaN, unit: '', note: message.split('\n')[0]?.slice(0, 400) ?? '' });
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

/**
 * Another engineer's bench module (bench/server.ts: `runServerBench(log?)`; files, process,
 * steps alike; l7 takes the test internet too: `runL7Bench(env, log)`), when its file exists.
 */
async function optionalRows(part: OptionalPart, failures: string[], env?: BenchEnv): Promise<readonly BenchRow[]> {
  if (!existsSync(join(import.meta.dirname, `${part.file}.ts`)) && !existsSync(join(import.meta.dirname, `${part.file}.js`))) {
    log(`${part.section} bench not present`);
    return [];
  }
  return section(part.section, failures, async () => {
    // A specifier TypeScript does not resolve: the module may not exist when this is type-checked.
    const specifier = `./${part.file}.js`;
    const module = (await import(specifier)) as Record<string, unknown>;
    const run = module[part.exportName];
    if (typeof run !== 'function') throw new TypeError(`bench/${part.file}.ts does not export ${part.exportName}()`);
    log(`${part.section} bench`);
    const result: unknown = env ? await (run as (env: BenchEnv, log: (line: string) => void) => Promise<unknown>)(env, log) : await (run as (log: (line: string) => void) => Promise<unknown>)(log);
    return parseBenchResult(result, `${part.section} bench`);
  });
}

const NETWORK_RUNNERS: Readonly<Record<NetworkSection, (env: BenchEnv) => Promise<readonly BenchRow[]>>> = {
  dns: async (env) => (await runDnsBench(env, log)).rows,
  'agent-start': (env) => runAgentStartBench(env, log),
  'exec-start': (env) => runExecStartBench(env, log),
  workload: async (env) => (await runWorkloadBench(env, log)).rows,
};

async function networkRows(chosen: ReadonlySet<Section>, failures: string[]): Promise<BenchRow[]> {
  const sections = NETWORK_SECTIONS.filter((name) => chosen.has(name));
  if (sections.length === 0 && !OPTIONAL_NETWORK_PARTS.some((part) => chosen.has(part.section))) return [];
  const rows: BenchRow[] = [];
  let env: BenchEnv | undefined;
  try {
    log('building the test internet, a dnsmasq upstream and the baseline job namespace');
    const ready = await createBenchEnv();
    env = ready;
    for (const name of sections) rows.push(...(await section(name, failures, () => NETWORK_RUNNERS[name](ready))));
    for (const part of OPTIONAL_NETWORK_PARTS) {
      if (chosen.has(part.section)) rows.push(...(await optionalRows(part, failures, ready)));
    }
  } catch (error: unknown) {
    failures.push('environment');
    rows.push(failedRow('environment', error));
  } finally {
    await env?.teardown();
  }
  return rows;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  // Once: a source file edited while the bench runs must not change what the header says was measured.
  const runwall = runwallCommand();
  log(`runwall from ${runwall.how}; ${cpus().length} cores; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const chosen = parseSectionList(process.env['RUNWALL_BENCH_ONLY']);
  const failures: string[] = [];
  const measured: BenchRow[] = await networkRows(chosen, failures);
  for (const part of OPTIONAL_PARTS) {
    if (chosen.has(part.section)) measured.push(...(await optionalRows(part, failures)));
  }
  // Memory rows last, together, whichever section measured them.
  const rows = [...measured.filter((row) => !row.name.startsWith('rss:')), ...measured.filter((row) => row.name.startsWith('rss:'))];

  const loadAfter = loadavg();
  const seconds = (performance.now() - began) / 1000;
  const header = `runwall bench, ${startedAt.toISOString()}: ${cpus().length} cores, kernel ${release()}, node ${process.version}; runwall from ${runwall.how}; load average ${loadBefore[0]?.toFixed(2)} at start, ${loadAfter[0]?.toFixed(2)} at end; ${seconds.toFixed(0)} s`;
  process.stdout.write(`\n${header}\n\n${formatTable(rows)}\n\n${goalSummary(rows)}${failures.length > 0 ? `; not measured: ${failures.join(', ')}` : ''}\n`);

  mkdirSync(OUT_DIR, { recursive: true });
  const packageVersion = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version?: string }).version;
  writeFileSync(
    join(OUT_DIR, 'results.json'),
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        seconds,
        runwall: { version: packageVersion, from: runwall.how },
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
