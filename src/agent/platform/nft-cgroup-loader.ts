/**
 * nft resolves `socket cgroupv2 ... "path"` against /sys/fs/cgroup at load
 * time. On a hybrid cgroup machine v2 lives elsewhere (e.g. /sys/fs/cgroup/unified),
 * so such rules are loaded from a private mount namespace that shows the v2
 * hierarchy at /sys/fs/cgroup. The kernel stores the cgroup's id, so the rule
 * holds for everyone once loaded.
 */
import { spawnSync } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';
import { cgroup2Root } from './cgroup.js';

export function loadRulesetWithCgroupView(ruleset: string): void {
  const root = cgroup2Root();
  const script =
    root === '/sys/fs/cgroup' ? 'exec nft -f -' : 'mount -t cgroup2 none /sys/fs/cgroup && exec nft -f -';
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    input: ruleset,
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (result.error) throw new RunwallError('RW_PLATFORM_MISSING', `cannot run unshare/nft: ${result.error.message}`);
  if (result.status !== 0) {
    throw new RunwallError('RW_NFT_FAILED', `nft refused the ruleset: ${(result.stderr || result.stdout).trim().split('\n').slice(0, 4).join(' | ')}`);
  }
}
