/**
 * Loads a batch of iptables rules atomically (`iptables-restore --noflush`,
 * the same for ip6tables) and runs single best-effort iptables commands for
 * removal. The rule text is built elsewhere (enforce/l7-rules.ts).
 */
import { execFile, spawnSync } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';

export type IpFamilyNumber = 4 | 6;

const TIMEOUT_MS = 15_000;

/**
 * Loads `text` into the current network namespace's tables; RW_PLATFORM_MISSING without the tool,
 * RW_SETUP_FAILED when refused. Asynchronous: the L7 worker keeps answering queued packets meanwhile,
 * and IPv4 and IPv6 can load side by side.
 */
export function iptablesRestore(family: IpFamilyNumber, text: string): Promise<void> {
  const tool = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  return new Promise((resolve, reject) => {
    const child = execFile(tool, ['-w', '5', '--noflush'], { encoding: 'utf8', timeout: TIMEOUT_MS }, (error, stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing) {
        reject(new RunwallError('RW_PLATFORM_MISSING', `${tool}: ${error.message} (install iptables)`));
        return;
      }
      const detail = (stderr || stdout || error.message).trim().split('\n').slice(0, 4).join(' | ');
      reject(new RunwallError('RW_SETUP_FAILED', `${tool} refused runwall's rules: ${detail}`));
    });
    // A tool that exits at once (missing, refusing its options) closes its input: that is reported above, not here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(text);
  });
}

/** One iptables/ip6tables command; true when it succeeded. For removal, where "already gone" is fine. */
export function iptablesTry(family: IpFamilyNumber, args: readonly string[]): boolean {
  const result = spawnSync(family === 4 ? 'iptables' : 'ip6tables', ['-w', '5', ...args], { encoding: 'utf8', timeout: TIMEOUT_MS });
  return !result.error && result.status === 0;
}

/** `iptables-save -t filter` (or ip6tables-save), or null when it cannot be read. Asynchronous: a periodic check must not stall its thread. */
export function iptablesSave(family: IpFamilyNumber): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'filter'], { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) =>
      resolve(error ? null : stdout),
    );
  });
}

/** The names of the filter table's chains in this namespace (for finding what a crashed run left). */
export function iptablesChains(family: IpFamilyNumber): string[] {
  const result = spawnSync(family === 4 ? 'iptables' : 'ip6tables', ['-w', '5', '-t', 'filter', '-S'], { encoding: 'utf8', timeout: TIMEOUT_MS });
  if (result.error || result.status !== 0) return [];
  return [...result.stdout.matchAll(/^-N (\S+)$/gm)].map((match) => match[1] ?? '').filter((name) => name !== '');
}
