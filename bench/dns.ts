/**
 * DNS through runwall's proxy as deployed (`runwall agent` in P-host, block mode,
 * every answer admitted to the firewall before it is released), beside the same
 * queries sent straight to the upstream and through dnsmasq forwarding to it from
 * the same place. dnsperf drives all three with the same query file.
 *
 *   latency: p50/p99 at a fixed offered load (LATENCY_QPS), from dnsperf -v per-query lines
 *   qps:     dnsperf with 100 queries outstanding for QPS_SECONDS
 *
 * Every target, alike, first answers a warm-up run (the latency run's load, on other names):
 * a freshly started agent runs its first thousand queries through V8's interpreter and
 * baseline code, ~100 µs slower each than once it is warm, and a long-running agent is warm
 * for all but the first second of a job. The warm-up's own p50 is in the note (cold start);
 * other names, so the measured run still meets every name for the first time.
 *
 * The agent blocks every other resolver in P-host while it runs, so the three cannot
 * interleave query by query: direct is measured before and after the proxy and the
 * two are averaged, so a machine whose load drifts does not favour either side.
 *
 * Two upstreams: the test internet's zone server (a Node process, which can itself
 * be the bottleneck) and dnsmasq answering the same names (fast).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_RESOLVER, startAgent, type RunningAgent } from './agent-run.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { DENIED_SUFFIX, DNSMASQ_UPSTREAM, ZONE_UPSTREAM, waitForDns, type BenchEnv } from './bench-env.js';
import { parseDnsperfLatencies, parseDnsperfSummary } from './dnsperf-output.js';
import { peakRssOf, runChecked, start, type Started } from './processes.js';
import { percentile } from './stats.js';

/** Low enough that none of the three queues (the proxy saturates at a few thousand qps here): latency, not backlog. */
const LATENCY_QPS = 400;
const LATENCY_SECONDS = 3;
const QPS_SECONDS = 4;
const QPS_OUTSTANDING = 100;
const NAMES = 10_000;
/** The warm-up's names: nI.gen.test for I from here (the zone server answers up to n99999). */
const WARM_UP_FIRST_NAME = 50_000;
/** Where the dnsmasq forwarder listens in P-host: beside the agent's 127.0.0.153. */
const DNSMASQ_FORWARDER = '127.0.0.154';

type QueryPath = 'allowed' | 'denied';
type Target = 'direct' | 'dnsmasq' | 'proxy';

interface Upstream {
  readonly label: string;
  readonly address: string;
  /** Which query paths to run against it. */
  readonly paths: readonly QueryPath[];
}

const UPSTREAMS: readonly Upstream[] = [
  { label: 'zone server upstream', address: ZONE_UPSTREAM, paths: ['allowed'] },
  // Denied names never leave the proxy, so one upstream is enough to compare that path.
  { label: 'dnsmasq upstream', address: DNSMASQ_UPSTREAM, paths: ['allowed', 'denied'] },
];

const PATH_TEXT: Readonly<Record<QueryPath, string>> = {
  allowed: 'allowed names (admitted)',
  denied: 'denied names (NXDOMAIN)',
};
const EXPECTED_RCODE: Readonly<Record<QueryPath, string>> = { allowed: 'NOERROR', denied: 'NXDOMAIN' };

interface DnsFigures {
  /** p50 of the warm-up run: the first queries a freshly started target answers. */
  readonly coldP50Us: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly qps: number;
  /** Queries answered in both runs. */
  readonly completed: number;
  /** Lost queries and unexpected answers, for the note column. */
  readonly problems: readonly string[];
}

interface AgentMemory {
  readonly idleRssBytes: number;
  readonly peakRssBytes: number;
  /** VmHWM last seen while `agent stop` wrote the report (the process is gone after). */
  stopPeakRssBytes?: number;
  readonly queries: number;
}

/** How often VmHWM is read while the agent stops. */
const STOP_SAMPLE_MS = 20;

export interface DnsBenchResult {
  readonly rows: readonly BenchRow[];
}

const MIB = 1024 * 1024;

function meanOf(a: DnsFigures, b: DnsFigures): DnsFigures {
  return {
    coldP50Us: (a.coldP50Us + b.coldP50Us) / 2,
    p50Us: (a.p50Us + b.p50Us) / 2,
    p99Us: (a.p99Us + b.p99Us) / 2,
    qps: (a.qps + b.qps) / 2,
    completed: a.completed + b.completed,
    problems: [...a.problems, ...b.problems],
  };
}

interface QueryFiles {
  readonly measured: string;
  readonly warmUp: string;
}

function queryFiles(env: BenchEnv, path: QueryPath): QueryFiles {
  const suffix = path === 'allowed' ? 'gen.test' : DENIED_SUFFIX;
  const write = (name: string, first: number): string => {
    const file = join(env.dir, `queries-${path}-${name}.txt`);
    writeFileSync(file, Array.from({ length: NAMES }, (_, i) => `n${first + i}.${suffix} A`).join('\n') + '\n');
    return file;
  };
  return { measured: write('measured', 0), warmUp: write('warm-up', WARM_UP_FIRST_NAME) };
}

function rcodeProblems(codes: Readonly<Record<string, number>>, expected: string): string[] {
  return Object.entries(codes)
    .filter(([code, count]) => code !== expected && count > 0)
    .map(([code, count]) => `${count} ${code}`);
}

async function measure(env: BenchEnv, server: string, files: QueryFiles, path: QueryPath): Promise<DnsFigures> {
  const inHost = { netns: env.hostNs, timeoutMs: 60_000 };
  const latencyArgv = (file: string): string[] => ['dnsperf', '-s', server, '-d', file, '-Q', String(LATENCY_QPS), '-q', '20', '-l', String(LATENCY_SECONDS), '-t', '2', '-v'];
  const warmUpRun = await runChecked(latencyArgv(files.warmUp), inHost);
  const warmUpSummary = parseDnsperfSummary(warmUpRun.stdout);
  const latencyRun = await runChecked(latencyArgv(files.measured), inHost);
  const latencies = parseDnsperfLatencies(latencyRun.stdout);
  const latencySummary = parseDnsperfSummary(latencyRun.stdout);
  const qpsRun = await runChecked(['dnsperf', '-s', server, '-d', files.measured, '-q', String(QPS_OUTSTANDING), '-l', String(QPS_SECONDS), '-t', '2'], inHost);
  const qpsSummary = parseDnsperfSummary(qpsRun.stdout);
  const lost = warmUpSummary.lost + latencySummary.lost + qpsSummary.lost;
  const problems = [
    ...(lost > 0 ? [`${lost} lost`] : []),
    ...rcodeProblems(warmUpSummary.responseCodes, EXPECTED_RCODE[path]),
    ...rcodeProblems(qpsSummary.responseCodes, EXPECTED_RCODE[path]),
  ];
  return {
    coldP50Us: percentile(parseDnsperfLatencies(warmUpRun.stdout), 50) * 1e6,
    p50Us: percentile(latencies, 50) * 1e6,
    p99Us: percentile(latencies, 99) * 1e6,
    qps: qpsSummary.queriesPerSecond,
    completed: warmUpSummary.completed + latencySummary.completed + qpsSummary.completed,
    problems,
  };
}

async function withDnsmasqForwarder<T>(env: BenchEnv, upstream: string, body: () => Promise<T>): Promise<T> {
  // No cache: it forwards every query, as runwall's proxy does.
  const forwarder: Started = start(
    [
      'dnsmasq',
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      '--user=root',
      '--cache-size=0',
      '--dns-forward-max=1000',
      `--listen-address=${DNSMASQ_FORWARDER}`,
      '--bind-interfaces',
      `--server=${upstream}`,
    ],
    { netns: env.hostNs, timeoutMs: 10 * 60_000 },
  );
  try {
    await waitForDns(env.hostNs, DNSMASQ_FORWARDER, 'n1.gen.test', forwarder);
    return await body();
  } finally {
    forwarder.child.kill('SIGKILL');
    await forwarder.done.catch(() => undefined);
  }
}

/** The problems seen by the named targets (lost queries, unexpected answers), after any other remarks. */
function noteOf(figures: Readonly<Record<Target, DnsFigures>>, targets: readonly Target[], remarks: readonly string[] = []): { note?: string } {
  const problems = targets.flatMap((target) => figures[target].problems.map((problem) => `${target}: ${problem}`));
  const text = [...remarks, ...problems].join('; ');
  return text === '' ? {} : { note: text };
}

function rowsFor(upstream: Upstream, path: QueryPath, figures: Readonly<Record<Target, DnsFigures>>): BenchRow[] {
  const prefix = `dns ${PATH_TEXT[path]}, ${upstream.label}`;
  const { direct, dnsmasq, proxy } = figures;
  const latencyGoal = { on: 'ratio', bound: 'at-most', limit: 1.5 } as const;
  const upstreamBound = Math.abs(proxy.qps / direct.qps - 1) < 0.15 ? ['proxy ≈ direct: the upstream may be what limits both'] : [];
  return [
    benchRow({
      name: `${prefix}: p50 latency, proxy vs direct`,
      value: proxy.p50Us,
      unit: 'µs',
      baseline: direct.p50Us,
      goal: latencyGoal,
      ...noteOf(figures, ['proxy', 'direct'], [
        `at ${LATENCY_QPS} qps offered, after a warm-up run alike for every target; direct: mean of a run before and after the proxy's`,
        `warm-up (first queries after start): proxy ${Math.round(proxy.coldP50Us)} µs, direct ${Math.round(direct.coldP50Us)} µs, dnsmasq ${Math.round(dnsmasq.coldP50Us)} µs`,
      ]),
    }),
    benchRow({ name: `${prefix}: p99 latency, proxy vs direct`, value: proxy.p99Us, unit: 'µs', baseline: direct.p99Us, goal: latencyGoal }),
    benchRow({ name: `${prefix}: p50 latency, dnsmasq vs direct`, value: dnsmasq.p50Us, unit: 'µs', baseline: direct.p50Us, note: 'reference: what a C forwarder adds' }),
    benchRow({
      name: `${prefix}: qps, proxy vs dnsmasq`,
      value: proxy.qps,
      unit: 'qps',
      baseline: dnsmasq.qps,
      goal: { on: 'ratio', bound: 'at-least', limit: 1 },
      ...noteOf(figures, ['proxy', 'dnsmasq']),
    }),
    benchRow({ name: `${prefix}: qps, proxy vs direct`, value: proxy.qps, unit: 'qps', baseline: direct.qps, ...noteOf(figures, ['direct'], upstreamBound) }),
  ];
}

function agentMemoryRow(runs: readonly AgentMemory[]): BenchRow {
  const worst = runs.reduce((a, b) => (b.peakRssBytes > a.peakRssBytes ? b : a));
  const perQuery = (worst.peakRssBytes - worst.idleRssBytes) / worst.queries;
  return benchRow({
    name: 'rss: runwall agent peak, after the DNS load',
    value: worst.peakRssBytes / MIB,
    unit: 'MiB',
    baseline: worst.idleRssBytes / MIB,
    goal: { on: 'value', bound: 'at-most', limit: 80 },
    note: `VmHWM after ${worst.queries.toLocaleString('en-US')} queries, the larger of ${runs.length} agent runs; baseline: its RSS idle after start; +${Math.round(perQuery)} bytes per query${
      worst.stopPeakRssBytes !== undefined ? `; ${(worst.stopPeakRssBytes / MIB).toFixed(0)} MiB through \`agent stop\` (report written, sampled every ${STOP_SAMPLE_MS} ms)` : ''
    }`,
  });
}

function stopFailureRow(upstream: Upstream, proxied: Partial<Record<QueryPath, DnsFigures>>, error: unknown): BenchRow {
  const queries = Object.values(proxied).reduce((sum, figures) => sum + (figures?.completed ?? 0), 0);
  const message = (error instanceof Error ? error.message : String(error)).slice(0, 300);
  return benchRow({
    name: `dns: \`runwall agent stop\` after ${queries.toLocaleString('en-US')} queries (${upstream.label})`,
    value: Number.NaN,
    unit: '',
    note: `failed: ${message}`,
  });
}

async function measureDirect(env: BenchEnv, upstream: Upstream, files: Readonly<Record<QueryPath, QueryFiles>>, log: (line: string) => void, when: string): Promise<Partial<Record<QueryPath, DnsFigures>>> {
  const figures: Partial<Record<QueryPath, DnsFigures>> = {};
  for (const path of upstream.paths) {
    log(`dns: ${path} names, direct to the ${upstream.label} (${when})`);
    figures[path] = await measure(env, upstream.address, files[path], path);
  }
  return figures;
}

export async function runDnsBench(env: BenchEnv, log: (line: string) => void): Promise<DnsBenchResult> {
  const files: Readonly<Record<QueryPath, QueryFiles>> = { allowed: queryFiles(env, 'allowed'), denied: queryFiles(env, 'denied') };
  const rows: BenchRow[] = [];
  const memory: AgentMemory[] = [];
  const stopFailures: BenchRow[] = [];
  for (const upstream of UPSTREAMS) {
    const before = await measureDirect(env, upstream, files, log, 'before');
    const forwarded: Partial<Record<QueryPath, DnsFigures>> = {};
    await withDnsmasqForwarder(env, upstream.address, async () => {
      for (const path of upstream.paths) {
        log(`dns: ${path} names, through dnsmasq`);
        forwarded[path] = await measure(env, DNSMASQ_FORWARDER, files[path], path);
      }
    });
    const proxied: Partial<Record<QueryPath, DnsFigures>> = {};
    const agent: RunningAgent = await startAgent(env, { upstream: upstream.address, allowed: '*.gen.test' });
    try {
      for (const path of upstream.paths) {
        log(`dns: ${path} names, through runwall agent's proxy`);
        proxied[path] = await measure(env, AGENT_RESOLVER, files[path], path);
      }
      const peak = peakRssOf(agent.pid);
      const queries = upstream.paths.reduce((sum, path) => sum + (proxied[path]?.completed ?? 0), 0);
      if (peak !== undefined && queries > 0) memory.push({ idleRssBytes: agent.rssBytes, peakRssBytes: peak, queries });
    } finally {
      const figures = memory.at(-1);
      const sampler = setInterval(() => {
        const seen = peakRssOf(agent.pid);
        if (figures && seen !== undefined) figures.stopPeakRssBytes = Math.max(figures.stopPeakRssBytes ?? 0, seen);
      }, STOP_SAMPLE_MS);
      // A stop that fails is runwall's failure, not the bench's: the figures measured stand, and the failure is a row.
      stopFailures.push(...(await agent.stop().then(() => [], (error: unknown) => [stopFailureRow(upstream, proxied, error)])));
      clearInterval(sampler);
    }
    const after = await measureDirect(env, upstream, files, log, 'after');
    for (const path of upstream.paths) {
      const direct = meanOf(before[path]!, after[path]!); // every path was measured in both
      rows.push(...rowsFor(upstream, path, { direct, dnsmasq: forwarded[path]!, proxy: proxied[path]! }));
    }
  }
  if (memory.length > 0) rows.push(agentMemoryRow(memory));
  return { rows: [...rows, ...stopFailures] };
}
