/**
 * Docker sets the iptables FORWARD policy to DROP on the hosts it runs on
 * (every GitHub-hosted runner). A packet must pass every base chain of a hook,
 * so runwall's own table admitting the job's traffic is not enough there: the
 * job's interface is also accepted in iptables' FORWARD chain, after runwall's
 * table (priority filter - 10) has already judged every packet.
 */
import { execFile, spawnSync } from 'node:child_process';
import { RunwallError } from '../../protocol/index.js';

type Family = 4 | 6;

function run(family: Family, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(family === 4 ? 'iptables' : 'ip6tables', ['-w', '5', ...args], { encoding: 'utf8', timeout: 10_000 });
  if (result.error) return { status: null, stdout: '', stderr: result.error.message };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** True when iptables exists and its FORWARD chain drops by default. Asynchronous: both families are asked side by side. */
export function forwardPolicyDrops(family: Family): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(family === 4 ? 'iptables' : 'ip6tables', ['-w', '5', '-S', 'FORWARD'], { encoding: 'utf8', timeout: 10_000 }, (error, stdout) =>
      resolve(!error && /^-P FORWARD DROP$/m.test(stdout)),
    );
  });
}

function ruleArgs(iface: string): string[][] {
  return [
    ['FORWARD', '-i', iface, '-m', 'comment', '--comment', 'runwall', '-j', 'ACCEPT'],
    ['FORWARD', '-o', iface, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-m', 'comment', '--comment', 'runwall', '-j', 'ACCEPT'],
  ];
}

/** Inserts the accept rules for the job's interface; returns the undo. */
export function acceptForwardFor(family: Family, iface: string): () => void {
  for (const rule of ruleArgs(iface)) {
    const result = run(family, ['-I', ...rule.slice(0, 1), '1', ...rule.slice(1)]);
    if (result.status !== 0) {
      throw new RunwallError('RW_SETUP_FAILED', `iptables refused to accept the job's interface in FORWARD: ${result.stderr.trim()}`);
    }
  }
  return () => {
    for (const rule of ruleArgs(iface)) run(family, ['-D', ...rule]);
  };
}
