/**
 * What the DNS proxy pays per fresh answer before it releases it: Firewall.admit
 * of one address, over netlink (the proxy's path) against libnftables' text
 * path as the baseline, 3,000 fresh addresses per path per round, rounds
 * alternating, in a throw-away network namespace (bench/admit-worker.ts).
 */
import { join } from 'node:path';
import { benchRow, type BenchRow } from './bench-row.js';
import { REPO } from './bench-env.js';
import { cleanEnv, runChecked } from './processes.js';
import { median, percentile } from './stats.js';

const ADMISSIONS = 3000;
const ROUNDS = 3;

export async function runAdmitBench(log: (line: string) => void): Promise<readonly BenchRow[]> {
  log(`admit: ${ROUNDS} rounds of ${ADMISSIONS} fresh addresses per path, in a namespace of its own`);
  const worker = await runChecked(
    ['unshare', '--net', process.execPath, '--import', 'tsx', join(REPO, 'bench/admit-worker.ts'), String(ADMISSIONS), String(ROUNDS)],
    { cwd: REPO, timeoutMs: 300_000, env: cleanEnv() },
  );
  const samples = JSON.parse(worker.stdout.trim().split('\n').at(-1) ?? '{}') as { netlink?: number[]; libnftables?: number[] };
  const netlink = samples.netlink ?? [];
  const text = samples.libnftables ?? [];
  if (netlink.length === 0 || text.length === 0) throw new Error(`admit worker gave no samples: ${worker.stdout.slice(0, 200)}`);
  const note = `${ROUNDS} × ${ADMISSIONS} fresh IPv4 addresses each, one per call, into the run's whole table; baseline: libnftables (text)`;
  return [
    benchRow({
      name: 'admit: one fresh address (Firewall.admit over netlink), median',
      value: median(netlink),
      unit: 'µs',
      baseline: median(text),
      note,
      goal: { on: 'ratio', bound: 'at-most', limit: 0.25 },
    }),
    benchRow({
      name: 'admit: one fresh address (Firewall.admit over netlink), p99',
      value: percentile(netlink, 99),
      unit: 'µs',
      baseline: percentile(text, 99),
      note,
    }),
  ];
}
