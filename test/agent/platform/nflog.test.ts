// The NFLOG reader against the real kernel, in a namespace made for this test: a veth pair
// (this kernel has no dummy driver) routes documentation prefixes nowhere, an nftables output chain logs to an
// NFLOG group and rejects/drops, and the child (nflog-in-netns.ts) makes the traffic.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NflogReader, createNetns, deleteNetns, ip } from '../../../src/agent/platform/index.js';
import { runInNetns, testNetnsName } from '../../helpers/in-netns.js';
import type { ScenarioInput, SeenPacket } from './nflog-in-netns.js';

const ns = testNetnsName('nflog');
const CHILD = resolve(import.meta.dirname, 'nflog-in-netns.ts');
const GROUP = 7;

function scenario<T>(name: ScenarioInput['scenario']): Promise<T> {
  return runInNetns<T>(ns, CHILD, { scenario: name, group: GROUP } satisfies ScenarioInput, { timeoutMs: 25_000 });
}

describe('NflogReader', () => {
  beforeAll(() => {
    createNetns(ns);
    ip(['link', 'add', 'rwd0', 'type', 'veth', 'peer', 'name', 'rwd1'], { netns: ns });
    ip(['link', 'set', 'rwd1', 'up'], { netns: ns });
    ip(['link', 'set', 'rwd0', 'up'], { netns: ns });
    ip(['address', 'add', '198.51.100.1/24', 'dev', 'rwd0'], { netns: ns });
    ip(['-6', 'address', 'add', '2001:db8:ffff::1/64', 'dev', 'rwd0', 'nodad'], { netns: ns });
    ip(['route', 'add', '203.0.113.0/24', 'dev', 'rwd0'], { netns: ns });
    ip(['-6', 'route', 'add', '2001:db8::/48', 'dev', 'rwd0'], { netns: ns });
  });
  afterAll(() => deleteNetns(ns));

  it('reports blocked TCP, UDP and ping, over IPv4 and IPv6, with addresses, ports, prefix and uid', async () => {
    const { packets, errors } = await scenario<{ packets: SeenPacket[]; errors: unknown[] }>('traffic');
    expect(errors).toEqual([]);
    const common = { group: GROUP, prefix: 'rw:block' };
    expect(packets).toHaveLength(7);
    const [tcp4, tcp6, udp4, udp6, ping4, ping6, unprivileged] = packets;
    expect(tcp4).toMatchObject({ ...common, family: 4, protocol: 'tcp', protocolNumber: 6, source: '198.51.100.1', destination: '203.0.113.5', destinationPort: 443 });
    expect(tcp4?.tcpFlags).toEqual({ syn: true, ack: false, rst: false, fin: false });
    expect(tcp4?.sourcePort).toBeGreaterThan(0);
    expect(tcp4?.uid).toBe(0);
    expect(tcp6).toMatchObject({ ...common, family: 6, protocol: 'tcp', source: '2001:db8:ffff::1', destination: '2001:db8::5', destinationPort: 8443 });
    expect(udp4).toMatchObject({ ...common, family: 4, protocol: 'udp', protocolNumber: 17, destination: '203.0.113.6', destinationPort: 443 });
    expect(udp6).toMatchObject({ ...common, family: 6, protocol: 'udp', destination: '2001:db8::6', destinationPort: 443 });
    expect(ping4).toMatchObject({ ...common, family: 4, protocol: 'icmp', protocolNumber: 1, destination: '203.0.113.7', icmpType: 8, sourcePort: null, destinationPort: null });
    expect(ping6).toMatchObject({ ...common, family: 6, protocol: 'icmpv6', protocolNumber: 58, destination: '2001:db8::7', icmpType: 128, sourcePort: null });
    expect(unprivileged).toMatchObject({ ...common, protocol: 'udp', destination: '203.0.113.8', destinationPort: 53, uid: 65534, gid: 65534 });
    for (const packet of packets) {
      expect(packet.outInterface).toBeGreaterThan(0);
      expect(Math.abs(Date.parse(packet.time) - Date.now())).toBeLessThan(60_000);
    }
  });

  it('sees every packet of a burst of 50', async () => {
    const { packets, errors } = await scenario<{ packets: SeenPacket[]; errors: unknown[] }>('burst');
    expect(errors).toEqual([]);
    expect(packets.map((p) => p.destinationPort)).toEqual(Array.from({ length: 50 }, (_, i) => 10_000 + i));
  });

  it('refuses a second reader on a held group with EPERM and says another listener holds it', async () => {
    const { second } = await scenario<{ second: { code: string; message: string } | null }>('second-reader');
    expect(second?.code).toBe('RW_SETUP_FAILED');
    expect(second?.message).toMatch(/NFLOG group 7 is held by another listener \(EPERM\)/);
  });

  it('refuses a group number outside 0-65535 before touching the kernel', async () => {
    for (const group of [-1, 65536, 1.5]) {
      await expect(NflogReader.open(group, () => undefined, () => undefined)).rejects.toMatchObject({ code: 'RW_SETUP_FAILED' });
    }
  });

  it('closes promptly when no packet ever arrived', async () => {
    const { closeMs, packets } = await scenario<{ closeMs: number; packets: number }>('idle-close');
    expect(packets).toBe(0);
    expect(closeMs).toBeLessThan(300);
  });
});
