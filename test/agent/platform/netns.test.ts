// Network namespaces, links and sysctls through iproute2/nsenter. Only namespaces this test creates change.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, ip, ipBatch, linkExists, listNetns, netnsExists, netnsPath, sysctl } from '../../../src/agent/platform/index.js';
import { testNetnsName } from '../../helpers/in-netns.js';

const ns = testNetnsName('netns');

/** The RunwallError code and message a call throws. */
function thrown(f: () => unknown): { code: unknown; message: string } {
  try {
    f();
  } catch (error) {
    return { code: (error as { code?: unknown }).code, message: (error as Error).message };
  }
  throw new Error('expected a throw');
}

function readInNetns(file: string): string {
  return spawnSync('nsenter', [`--net=${netnsPath(ns)}`, '--', 'cat', file], { encoding: 'utf8' }).stdout.trim();
}

describe('network namespaces', () => {
  afterAll(() => deleteNetns(ns));

  it('creates a named namespace with loopback up, lists it, and refuses to create it twice', () => {
    createNetns(ns);
    expect(netnsExists(ns)).toBe(true);
    expect(netnsPath(ns)).toBe(`/run/netns/${ns}`);
    expect(listNetns()).toContain(ns);
    expect(ip(['-o', 'link', 'show', 'lo'], { netns: ns })).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    const again = thrown(() => createNetns(ns));
    expect(again.code).toBe('RW_SETUP_FAILED');
    expect(again.message).toMatch(/File exists/);
  });

  it('deletes idempotently', () => {
    const other = testNetnsName('netns-del');
    createNetns(other);
    deleteNetns(other);
    expect(netnsExists(other)).toBe(false);
    expect(listNetns()).not.toContain(other);
    deleteNetns(other);
  });

  it('rejects names that are not a plain path component', () => {
    for (const name of ['', '../etc', 'a/b', '-n', 'x'.repeat(64)]) expect(thrown(() => netnsPath(name)).code).toBe('RW_SETUP_FAILED');
  });

  it('runs ip inside the namespace and quotes its stderr on failure', () => {
    ip(['link', 'add', 'rwt0', 'type', 'veth', 'peer', 'name', 'rwt1'], { netns: ns });
    expect(linkExists('rwt0', { netns: ns })).toBe(true);
    expect(linkExists('rwt1', { netns: ns })).toBe(true);
    expect(linkExists('rwt0')).toBe(false); // not in this process's namespace
    expect(linkExists('nope0', { netns: ns })).toBe(false);
    const failure = thrown(() => ip(['route', 'add', '203.0.113.0/24', 'dev', 'nope0'], { netns: ns }));
    expect(failure.code).toBe('RW_SETUP_FAILED');
    expect(failure.message).toMatch(/ip -n .* route add 203\.0\.113\.0\/24 dev nope0' exited \d+: Cannot find device "nope0"/);
  });

  it('runs a batch of ip commands in the namespace, in order, and stops at the first that fails, quoting ip', async () => {
    await ipBatch(
      [
        ['link', 'add', 'rwb0', 'type', 'veth', 'peer', 'name', 'rwb1'],
        ['addr', 'add', '10.77.0.1/30', 'dev', 'rwb0'],
        ['addr', 'add', 'fd77::1/64', 'dev', 'rwb0', 'nodad'],
        ['link', 'set', 'rwb0', 'up'],
      ],
      { netns: ns },
    );
    const addresses = ip(['-o', 'addr', 'show', 'dev', 'rwb0'], { netns: ns });
    expect(addresses).toContain('10.77.0.1/30');
    expect(addresses).toContain('fd77::1/64');
    expect(linkExists('rwb0')).toBe(false);
    const failure = await ipBatch([['link', 'set', 'rwb1', 'up'], ['route', 'add', '203.0.113.0/24', 'dev', 'nope0'], ['link', 'set', 'rwb1', 'down']], { netns: ns }).then(
      () => null,
      (error: { code?: unknown; message: string }) => error,
    );
    expect(failure?.code).toBe('RW_SETUP_FAILED');
    expect(failure?.message).toMatch(/Cannot find device "nope0"/);
    // The line after the failing one did not run.
    expect(ip(['-o', 'link', 'show', 'rwb1'], { netns: ns })).toMatch(/[<,]UP[,>]/);
    await expect(ipBatch([['link', 'set', 'rwb0 up;', 'x']], { netns: ns })).rejects.toThrow(/cannot be a word/);
  });

  it('sets sysctls inside the namespace only, in dotted or slashed form', () => {
    const hostForwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    const wanted = hostForwarding === '1' ? '0' : '1';
    sysctl('net.ipv4.ip_forward', wanted, { netns: ns });
    expect(readInNetns('/proc/sys/net/ipv4/ip_forward')).toBe(wanted);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(hostForwarding);
    sysctl('net/ipv6/conf/rwt0/disable_ipv6', '1', { netns: ns });
    expect(readInNetns('/proc/sys/net/ipv6/conf/rwt0/disable_ipv6')).toBe('1');
  });

  it('refuses sysctl keys that could leave /proc/sys, and reports an unknown key', () => {
    expect(thrown(() => sysctl('net/../../etc/passwd', '1', { netns: ns })).code).toBe('RW_SETUP_FAILED');
    expect(thrown(() => sysctl('net.ipv4.ip_forward', '1\n0', { netns: ns })).code).toBe('RW_SETUP_FAILED');
    const unknown = thrown(() => sysctl('net.ipv4.no_such_knob', '1', { netns: ns }));
    expect(unknown.code).toBe('RW_SETUP_FAILED');
    expect(unknown.message).toMatch(/No such file or directory/);
  });
});
