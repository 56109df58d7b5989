/**
 * nft resolves `socket cgroupv2 ... "path"` against /sys/fs/cgroup at load
 * time, and the kernel stores the cgroup's id, so the rule holds for everyone
 * once loaded. Where cgroup2 is not mounted at or below /sys/fs/cgroup, rules
 * are loaded from a private mount namespace that shows it there.
 */
import { execFile } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';
import { cgroup2Root } from './cgroup.js';

/** Where nft looks up a `socket cgroupv2` path. */
const NFT_CGROUP_DIR = '/sys/fs/cgroup';

/**
 * How nft can name the cgroup `relPath` (relative to the cgroup2 root), and how a ruleset naming it
 * is loaded. v2 at /sys/fs/cgroup or below it (a hybrid machine's /sys/fs/cgroup/unified: the path is
 * prefixed, and nft stores the same cgroup id): in-process (`load` absent), a few ms. v2 elsewhere:
 * through a helper in a mount namespace of its own (20-70 ms).
 */
export function nftCgroupView(relPath: string): { readonly path: string; readonly load?: (ruleset: string) => Promise<void> } {
  const root = cgroup2Root();
  if (root === NFT_CGROUP_DIR) return { path: relPath };
  if (root.startsWith(`${NFT_CGROUP_DIR}/`)) return { path: `${root.slice(NFT_CGROUP_DIR.length + 1)}/${relPath}` };
  return { path: relPath, load: loadWithCgroupMounted };
}

/** Loads `ruleset` with nft in a private mount namespace where cgroup2 is mounted at /sys/fs/cgroup. */
function loadWithCgroupMounted(ruleset: string): Promise<void> {
  const script = `mount -t cgroup2 none ${NFT_CGROUP_DIR} && exec nft -f -`;
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
