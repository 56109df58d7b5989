/**
 * The L7 check (TLS SNI / HTTP Host against the policy) as deployed: `runwall
 * agent` in P-host with `--l7 on`, beside the same agent with `--l7 off`, so the
 * difference is the check alone (same sensors, same firewall).
 *
 *   per connection: connect + ClientHello until the server's first byte, sequential
 *                   connections to an allowed name (the check queues packets 2-3 of
 *                   each flow to the agent and waits for its verdict)
 *   bulk:           one download of BULK_BYTES through an allowed flow (after its
 *                   verdict nothing of the flow goes to the agent)
 *
 * Measured in the order off, on, on, off, twice (each its own agent), samples
 * of each setting pooled, so a machine whose load drifts favours neither side.
 * On a shared machine the bulk figure still moves by tens of percent between
 * runs; what the check adds to a bulk flow is structural: its first two client
 * packets go to the agent, the rest return at one connmark comparison.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentStatus } from './agent-run.js';
import { REPO, ZONE_UPSTREAM, type BenchEnv } from './bench-env.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { cleanEnv, runChecked } from './processes.js';
import { median, percentile } from './stats.js';

const CONNECTIONS = 200;
const BULK_BYTES = 500_000_000;
const BULK_RUNS = 4;
const SERVER = '198.51.100.10';
const NAME = 'allowed.test';
const AGENT_RESOLVER = '127.0.0.153';

type Setting = 'on' | 'off';
const ORDER: readonly Setting[] = ['off', 'on', 'on', 'off', 'off', 'on', 'on', 'off'];

interface L7Samples {
  /** ms from connect() to the server's first byte, per connection. */
  readonly latenciesMs: number[];
  /** Seconds per bulk download. */
  readonly bulkSeconds: number[];
  /** Packets of the bulk downloads the rules handed to the agent (on only). */
  readonly bulkQueuedPackets: number[];
}

/** Packets the L7 chain queued since its counters were zeroed, from `iptables -L -v -x`. */
export function queuedPackets(listing: string): number {
  return listing
    .split('\n')
    .filter((line) => line.includes('NFQUEUE'))
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0] ?? 0), 0);
}

export interface L7BenchResult {
  readonly rows: BenchRow[];
}

async function withAgent<T>(env: BenchEnv, setting: Setting, body: () => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(env.dir, `l7-${setting}-`));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${ZONE_UPSTREAM}\n`);
  const stateFlags = ['--state-dir', join(dir, 'state')];
  const inHost = { netns: env.hostNs, cwd: REPO, timeoutMs: 30_000, env: cleanEnv() };
  await runChecked(
    [
      ...env.runwall.argv,
      'agent',
      'start',
      '--egress-policy',
      'block',
      '--allowed-endpoints',
      `${NAME}:443 ${NAME}:80`,
      '--dns-upstream',
      ZONE_UPSTREAM,
      '--l7',
      setting,
      ...stateFlags,
      '--resolv-conf',
      resolvConf,
      '--docker-daemon-json',
      join(dir, 'no-docker', 'daemon.json'),
    ],
    inHost,
  );
  try {
    parseAgentStatus((await runChecked([...env.runwall.argv, 'agent', 'status', ...stateFlags], inHost)).stdout);
    // Resolving through the agent admits the server's address to the firewall.
    await runChecked(['dig', '+short', '+tries=2', '+time=2', `@${AGENT_RESOLVER}`, NAME, 'A'], { netns: env.hostNs, timeoutMs: 10_000 });
    return await body();
  } finally {
    await runChecked([...env.runwall.argv, 'agent', 'stop', '--report', join(dir, 'report.json'), ...stateFlags], inHost);
  }
}

async function measure(env: BenchEnv, setting: Setting, log: (line: string) => void): Promise<L7Samples> {
  return withAgent(env, setting, async () => {
    log(`l7 ${setting}: ${CONNECTIONS} TLS connections`);
    const client = await runChecked([process.execPath, '--import', 'tsx', join(REPO, 'bench/l7-client.ts'), SERVER, NAME, String(CONNECTIONS)], {
      netns: env.hostNs,
      cwd: REPO,
      timeoutMs: 120_000,
      env: cleanEnv(),
    });
    const latencies = JSON.parse(client.stdout.trim().split('\n').at(-1) ?? '[]') as number[];
    // The first connections warm caches on both sides.
    const measured = latencies.slice(10);
    log(`l7 ${setting}: ${BULK_RUNS} downloads of ${BULK_BYTES / 1e6} MB`);
    const seconds: number[] = [];
    const queued: number[] = [];
    const counters = ['iptables', '-w', '5', '-L', 'RWL7-agent', '-v', '-x', '-n'];
    // One more than measured: the first download warms the page cache and the server.
    for (let i = 0; i <= BULK_RUNS; i++) {
      if (setting === 'on') await runChecked(['iptables', '-w', '5', '-Z', 'RWL7-agent'], { netns: env.hostNs, timeoutMs: 10_000 });
      const curl = await runChecked(
        ['curl', '-sS', '-o', '/dev/null', '--resolve', `${NAME}:80:${SERVER}`, '-w', '%{time_total} %{size_download}', `http://${NAME}/bytes/${BULK_BYTES}`],
        { netns: env.hostNs, timeoutMs: 120_000 },
      );
      const [total = 'NaN', size = '0'] = curl.stdout.trim().split(' ');
      if (Number(size) !== BULK_BYTES) throw new Error(`bulk download got ${size} of ${BULK_BYTES} bytes`);
      if (i > 0) seconds.push(Number(total));
      if (setting === 'on') queued.push(queuedPackets((await runChecked(counters, { netns: env.hostNs, timeoutMs: 10_000 })).stdout));
    }
    return { latenciesMs: measured, bulkSeconds: seconds, bulkQueuedPackets: queued };
  });
}

/** Rows for `make bench`: what the L7 check adds per connection and to a bulk transfer. */
export async function runL7Bench(env: BenchEnv, log: (line: string) => void): Promise<L7BenchResult> {
  const pooled: Record<Setting, L7Samples> = {
    off: { latenciesMs: [], bulkSeconds: [], bulkQueuedPackets: [] },
    on: { latenciesMs: [], bulkSeconds: [], bulkQueuedPackets: [] },
  };
  for (const setting of ORDER) {
    const samples = await measure(env, setting, log);
    pooled[setting].latenciesMs.push(...samples.latenciesMs);
    pooled[setting].bulkSeconds.push(...samples.bulkSeconds);
    pooled[setting].bulkQueuedPackets.push(...samples.bulkQueuedPackets);
  }
  const figures = (samples: L7Samples) => ({
    p50Ms: percentile(samples.latenciesMs, 50),
    p99Ms: percentile(samples.latenciesMs, 99),
    bulkSeconds: median(samples.bulkSeconds),
  });
  const on = figures(pooled.on);
  const off = figures(pooled.off);
  const mbps = (seconds: number): number => BULK_BYTES / 1e6 / seconds;
  const rows = [
    benchRow({
      name: 'l7: TLS connect + ClientHello, p50',
      value: on.p50Ms,
      unit: 'ms',
      baseline: off.p50Ms,
      note: `agent --l7 on vs off, ${(CONNECTIONS - 10) * (ORDER.length / 2)} sequential connections each`,
    }),
    benchRow({
      name: 'l7: added per connection, p50',
      value: Math.max(0, on.p50Ms - off.p50Ms),
      unit: 'ms',
      note: 'the flow waits for the verdict on its ClientHello',
      goal: { on: 'value', bound: 'at-most', limit: 1 },
    }),
    benchRow({ name: 'l7: TLS connect + ClientHello, p99', value: on.p99Ms, unit: 'ms', baseline: off.p99Ms }),
    benchRow({
      name: `l7: bulk download ${BULK_BYTES / 1e6} MB, time`,
      value: on.bulkSeconds,
      unit: 's',
      baseline: off.bulkSeconds,
      note: `${mbps(on.bulkSeconds).toFixed(0)} vs ${mbps(off.bulkSeconds).toFixed(0)} MB/s; nothing after the verdict goes to the agent`,
      goal: { on: 'ratio', bound: 'at-most', limit: 1.03 },
    }),
    benchRow({
      name: `l7: packets of a ${BULK_BYTES / 1e6} MB flow sent to the agent`,
      value: Math.max(...pooled.on.bulkQueuedPackets),
      unit: 'packets',
      note: 'the handshake ACK and the request; every later packet returns at one connmark match in the kernel',
      goal: { on: 'value', bound: 'at-most', limit: 4 },
    }),
  ];
  return { rows };
}
