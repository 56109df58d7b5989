// Child side of nfqueue.test.ts: runs inside the test's namespace (test/helpers/in-netns.ts),
// queues loopback TCP to one port with iptables, answers with the reader, returns what happened.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { NF_DROP, NF_REPEAT, NfqueueReader, type QueuedPacket } from '../../../src/agent/platform/index.js';

export interface ScenarioInput {
  readonly scenario: 'repeat-with-mark' | 'drop' | 'no-reader' | 'second-reader';
  readonly queue: number;
}

const PORT = 4444;
const MARK = 0x10;

function iptables(args: string[]): void {
  const result = spawnSync('iptables', ['-w', '5', ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`iptables ${args.join(' ')}: ${result.stderr}`);
}

/** Marked packets pass; the rest of the port's client traffic goes to the queue. */
function installRules(queue: number): void {
  iptables(['-A', 'OUTPUT', '-o', 'lo', '-p', 'tcp', '--dport', String(PORT), '-m', 'mark', '--mark', `${MARK}/${MARK}`, '-j', 'ACCEPT']);
  iptables(['-A', 'OUTPUT', '-o', 'lo', '-p', 'tcp', '--dport', String(PORT), '-j', 'NFQUEUE', '--queue-num', String(queue)]);
}

async function echoServer(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(PORT, '127.0.0.1', resolve));
  return server;
}

/** Connects, sends `hello`, resolves to what came back or to the failure. */
function exchange(timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: PORT });
    const timer = setTimeout(() => (socket.destroy(), resolve('timeout')), timeoutMs);
    socket.on('connect', () => socket.write('hello'));
    socket.on('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(`echo:${data.toString()}`);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      resolve(`error:${(error as NodeJS.ErrnoException).code ?? error.message}`);
    });
  });
}

export default async function (input: ScenarioInput): Promise<unknown> {
  spawnSync('ip', ['link', 'set', 'lo', 'up']);
  installRules(input.queue);
  const server = await echoServer();
  try {
    if (input.scenario === 'no-reader') return { outcome: await exchange(1500) };
    const seen: Array<Pick<QueuedPacket, 'id' | 'mark' | 'destination'> & { port: number | undefined; syn: boolean | undefined; data: string }> = [];
    const errors: unknown[] = [];
    const reader: NfqueueReader = await NfqueueReader.open(
      input.queue,
      (packet) => {
        seen.push({ id: packet.id, mark: packet.mark, destination: packet.destination, port: packet.tcp?.destinationPort, syn: packet.tcp?.syn, data: Buffer.from(packet.tcp?.payload ?? []).toString() });
        if (input.scenario === 'drop') reader.verdict(packet.id, NF_DROP);
        else reader.verdict(packet.id, NF_REPEAT, packet.mark | MARK);
      },
      (error) => errors.push(error),
    );
    try {
      if (input.scenario === 'second-reader') {
        try {
          await NfqueueReader.open(input.queue, () => undefined, () => undefined);
          return { second: null };
        } catch (error) {
          const e = error as { code?: string; message?: string };
          return { second: { code: e.code, message: e.message } };
        }
      }
      const outcome = await exchange(input.scenario === 'drop' ? 1500 : 5000);
      return { outcome, seen, errors };
    } finally {
      await reader.close();
    }
  } finally {
    server.close();
  }
}
