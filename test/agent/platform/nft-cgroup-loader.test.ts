// nft names the agent's cgroup the way nftCgroupView says, loaded in-process on this machine
// (hybrid: cgroup2 at /sys/fs/cgroup/unified), and the rule exempts exactly that cgroup's sockets.
// In a namespace of the test's own; only loopback traffic.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroup2Root, nftCgroupView, createCgroup, removeCgroup } from '../../../src/agent/platform/index.js';

const base = `runwall-nftcg-${process.pid}`;
const netns = `rwnftcg-${process.pid}`;
// Sends one datagram to loopback; prints 'sent' or the errno name (an output rule that drops says EPERM).
const SEND = "import socket,errno\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ntry:\n  s.sendto(b'x',('127.0.0.1',9)); print('sent')\nexcept OSError as e: print(errno.errorcode[e.errno])";

function sendFrom(cgroup: string | null): string {
  const join = cgroup === null ? '' : `echo $$ > ${cgroup2Root()}/${cgroup}/cgroup.procs && `;
  const result = spawnSync('nsenter', [`--net=/run/netns/${netns}`, 'sh', '-c', `${join}exec python3 -c "$0"`, SEND], { encoding: 'utf8', timeout: 10_000 });
  return result.stdout.trim() || result.stderr.trim();
}

describe('the agent cgroup as nft names it', () => {
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', netns]);
    removeCgroup(`${base}/exempt`);
    removeCgroup(base);
  });

  it('loads without the helper here, and exempts the sockets of that cgroup only', () => {
    createCgroup(`${base}/exempt`);
    const named = nftCgroupView(`${base}/exempt`);
    expect(named.load).toBeUndefined();
    execFileSync('ip', ['netns', 'add', netns]);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    const ruleset = `table inet t {\n chain out {\n  type filter hook output priority 0; policy drop;\n  socket cgroupv2 level 2 "${named.path}" accept\n }\n}\n`;
    execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'nft', '-f', '-'], { input: ruleset });
    expect(sendFrom(`${base}/exempt`)).toBe('sent');
    expect(sendFrom(null)).toBe('EPERM');
  });
});
