/**
 * nft resolves `socket cgroupv2 ... "path"` against /sys/fs/cgroup at load
 * time. On a hybrid cgroup machine v2 lives elsewhere (e.g. /sys/fs/cgroup/unified),
 * so such rules are loaded from a private mount namespace that shows the v2
 * hierarchy at /sys/fs/cgroup. The kernel stores the cgroup's id, so the rule
 * holds for everyone once loaded. Where v2 is at /sys/fs/cgroup already, `inProcess`
 * (libnftables in this process) loads it: spawning unshare, sh and nft cost 20-70 ms
 * of the agent's start here.
 */
import { execFile } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';
import { cgroup2Root } from './cgroup.js';

export function loadRulesetWithCgroupView(ruleset: string, inProcess?: (ruleset: string) => void): Promise<void> {
  const root = cgroup2Root();
  if (root === '/sys/fs/cgroup' && inProcess) {
    inProcess(ruleset);
    return Promise.resolve();
  }
  const script = root === '/sys/fs/cgroup' ? 'exec nft -f -' : 'mount -t cgroup2 none /sys/fs/cgroup && exec nft -f -';
  // Asynchronous: the helper (unshare, sh, mount, nft: 20-70 ms here) runs while the caller goes on setting up.
  return new Promise((resolve, reject) => {
    const child = execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new RunwallError('RW_PLATFORM_MISSING', `cannot run unshare/nft: ${error.message}`));
        return;
      }
      reject(new RunwallError('RW_NFT_FAILED', `nft refused the ruleset: ${(stderr || stdout || error.message).trim().split('\n').slice(0, 4).join(' | ')}`));
    });
    // A helper that exits at once closes its input: that is reported above, not here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(ruleset);
  });
}
