/**
 * Run by bench/admit.ts inside a network namespace of its own (`unshare --net`):
 * the run's whole table installed, then fresh addresses admitted one answer at a
 * time through Firewall.admit, over netlink and over libnftables, rounds
 * alternating, each path with a fresh table so both fill sets of the same size.
 * Prints one JSON line: per-admission microseconds for each path.
 */
import { Firewall } from '../src/agent/enforce/firewall.js';
import type { RulesetConfig } from '../src/agent/enforce/ruleset.js';
import { Nftables } from '../src/agent/platform/index.js';

const [admissionsText = '3000', roundsText = '3'] = process.argv.slice(2);
const ADMISSIONS = Number(admissionsText);
const ROUNDS = Number(roundsText);
const WARM_UP = 100;
const PATHS = ['netlink', 'libnftables'] as const;

const config: RulesetConfig = {
  table: 'runwall_bench_admit',
  mode: 'block',
  scope: { kind: 'exec', jobInterface: 'rwh-bench', jobNet4: '100.64.0.0/30', jobNet6: 'fd52:756e:7761:0::/64' },
  nflogGroup: 20_002,
  resolvers: [{ family: 4, address: '100.64.0.1' }],
  staticAllows: [],
  blocked: [],
};

const nft = Nftables.open();
const samples: Record<(typeof PATHS)[number], number[]> = { netlink: [], libnftables: [] };
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? PATHS : [...PATHS].reverse();
  for (const via of order) {
    const firewall = new Firewall(nft, config, { graceSeconds: 10, admitVia: via });
    await firewall.install();
    if (via === 'netlink' && firewall.admissionFallback) throw new Error(firewall.admissionFallback.message);
    try {
      // 10.0.0.0/8 numbered by admission: every address fresh, none ever sent a packet (nothing routes here).
      const admit = (n: number): void =>
        firewall.admit([{ family: 4, ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port: 443, ttlSeconds: 300 }]);
      for (let i = 0; i < WARM_UP; i++) admit(1_000_000 + i);
      for (let i = 0; i < ADMISSIONS; i++) {
        const began = process.hrtime.bigint();
        admit(i);
        samples[via].push(Number(process.hrtime.bigint() - began) / 1000);
      }
    } finally {
      firewall.remove();
    }
  }
}
nft.close();
process.stdout.write(`${JSON.stringify(samples)}\n`);
