/**
 * nft resolves `socket cgroupv2 ... "path"` against /sys/fs/cgroup at load
 * time. On a hybrid cgroup machine v2 lives elsewhere (e.g. /sys/fs/cgroup/unified),
 * so such rules are loaded from a private mount namespace that shows the v2
 * hierarchy at /sys/fs/cgroup. The kernel stores the cgroup's id, so the rule
 * holds for everyone once loaded. cgroupPathForNft says when this is needed at all.
 */
import { execFile } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';
import { cgroup2Root } from './cgroup.js';

/** Where nft looks up a `socket cgroupv2` path. */
const NFT_CGROUP_DIR = '/sys/fs/cgroup';

/**
 * How nft can name the cgroup `relPath` (relative to the cgroup2 root) from this process: v2 at
 * /sys/fs/cgroup or below it (a hybrid machine's /sys/fs/cgroup/unified: the path is prefixed,
 * and nft stores the same cgroup id), or only through loadRulesetWithCgroupView's helper.
 * In-process, the load takes a few ms instead of the helper's 20-70 ms at the agent's start.
 */
export function cgroupPathForNft(relPath: string): { readonly path: string; readonly needsHelper: boolean } {
  const root = cgroup2Root();
  if (root === NFT_CGROUP_DIR) return { path: relPath, needsHelper: false };
  if (root.startsWith(`${NFT_CGROUP_DIR}/`)) return { path: `${root.slice(NFT_CGROUP_DIR.length + 1)}/${relPath}`, needsHelper: false };
  return { path: relPath, needsHelper: true };
}

export function loadRulesetWithCgroupView(ruleset: string): Promise<void> {
  const root = cgroup2Root();
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
