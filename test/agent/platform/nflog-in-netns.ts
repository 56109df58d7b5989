// Child side of nflog.test.ts: runs inside the test's namespace (see test/helpers/in-netns.ts),
// installs a logging ruleset with libnftables, reads NFLOG, makes traffic, returns what was seen.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { NflogReader, Nftables, type NflogPacket } from '../../../src/agent/platform/index.js';

export interface ScenarioInput {
  readonly scenario: 'traffic' | 'burst' | 'second-reader' | 'idle-close';
  readonly group: number;
}

/** An NflogPacket as it crosses JSON. */
export type SeenPacket = Omit<NflogPacket, 'time'> & { time: string };

const TABLE = 'rw_nflog_test';
const BURST = 50;
const WAIT_MS = 3000;

function installRuleset(group: number): void {
  const nft = Nftables.open();
  try {
    nft.run(`
      table inet ${TABLE} {
        chain output {
          type filter hook output priority 0; policy accept;
          ip daddr 203.0.113.0/24 meta l4proto tcp log group ${group} prefix "rw:block" reject with tcp reset
          ip6 daddr 2001:db8::/48 meta l4proto tcp log group ${group} prefix "rw:block" reject with tcp reset
          ip daddr 203.0.113.0/24 log group ${group} prefix "rw:block" drop
          ip6 daddr 2001:db8::/48 log group ${group} prefix "rw:block" drop
        }
      }`);
  } finally {
    nft.close();
  }
}

async function tcpConnect(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000);
    socket.on('error', () => resolve()).on('timeout', () => (socket.destroy(), resolve())).on('connect', () => (socket.destroy(), resolve()));
  });
}

async function udpSend(host: string, ports: readonly number[]): Promise<void> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  for (const port of ports) await new Promise<void>((resolve) => socket.send('x', port, host, () => resolve()));
  socket.close();
}

async function runTool(command: string, args: readonly string[]): Promise<void> {
  await new Promise<void>((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore', timeout: 5000 });
    child.on('exit', () => resolve()).on('error', () => resolve());
  });
}

export default async function (input: ScenarioInput) {
  const packets: NflogPacket[] = [];
  const errors: { code: string; message: string }[] = [];
  const open = () => NflogReader.open(input.group, (p) => packets.push(p), (e) => errors.push(e));

  if (input.scenario === 'second-reader') {
    const first = await open();
    const second = await open().then(
      () => null,
      (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }),
    );
    await first.close();
    // Closing releases the group: a new reader may bind it.
    const again = await open();
    await again.close();
    return { second };
  }

  if (input.scenario === 'idle-close') {
    const reader = await open();
    await sleep(200);
    const started = performance.now();
    await reader.close();
    return { closeMs: performance.now() - started, packets: packets.length };
  }

  installRuleset(input.group);
  const reader = await open();
  let expected: number;
  if (input.scenario === 'traffic') {
    await tcpConnect('203.0.113.5', 443);
    await tcpConnect('2001:db8::5', 8443);
    await udpSend('203.0.113.6', [443]);
    await udpSend('2001:db8::6', [443]);
    await runTool('ping', ['-c', '1', '-W', '1', '203.0.113.7']);
    await runTool('ping', ['-6', '-c', '1', '-W', '1', '2001:db8::7']);
    // An unprivileged process: its uid and gid are logged with the packet.
    await runTool('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');s.send('x',53,'203.0.113.8',()=>s.close())"]);
    expected = 7;
  } else {
    await udpSend('203.0.113.9', Array.from({ length: BURST }, (_, i) => 10_000 + i));
    expected = BURST;
  }
  const deadline = Date.now() + WAIT_MS;
  while (packets.length < expected && Date.now() < deadline) await sleep(20);
  await sleep(100); // anything extra would show up now
  const started = performance.now();
  await reader.close();
  return { packets, errors, closeMs: performance.now() - started };
}
