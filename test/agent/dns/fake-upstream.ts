// A fake upstream resolver on 127.0.0.1 (UDP and TCP, one ephemeral port) that
// records every question it sees, and clients to talk to the proxy.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { TcpFrameDecoder, encodeTcpFrame } from '../../../src/agent/dns/index.js';

export interface SeenQuestion {
  readonly name: string;
  readonly type: number;
  readonly transport: 'udp' | 'tcp';
  readonly raw: Buffer;
}

/** Returns the answers to send (in order; several to test mismatches), [] to stay silent, or 'close' to drop a TCP connection. */
export type Responder = (query: Buffer, question: SeenQuestion) => Uint8Array[] | 'close';

function questionOf(query: Buffer, transport: 'udp' | 'tcp'): SeenQuestion {
  // Read the name and type by hand: dns-packet does not know every type.
  const labels: string[] = [];
  let at = 12;
  while (query[at]! > 0) {
    labels.push(query.subarray(at + 1, at + 1 + query[at]!).toString('latin1'));
    at += query[at]! + 1;
  }
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(at + 1), transport, raw: query };
}

export class FakeUpstream {
  readonly seen: SeenQuestion[] = [];
  private readonly tcpSockets = new Set<net.Socket>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly port: number,
  ) {}

  static async start(responder: Responder): Promise<FakeUpstream> {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    udp.setRecvBufferSize(4 * 1024 * 1024);
    const port = udp.address().port;
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, '127.0.0.1', resolve);
    });
    const upstream = new FakeUpstream(udp, tcp, port);
    udp.on('message', (query, remote) => {
      const question = questionOf(query, 'udp');
      upstream.seen.push(question);
      const answers = responder(query, question);
      if (answers !== 'close') for (const answer of answers) udp.send(answer, remote.port, remote.address);
    });
    tcp.on('connection', (socket) => {
      upstream.tcpSockets.add(socket);
      socket.on('close', () => upstream.tcpSockets.delete(socket));
      const decoder = new TcpFrameDecoder();
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk)) {
          const query = Buffer.from(frame);
          const question = questionOf(query, 'tcp');
          upstream.seen.push(question);
          const answers = responder(query, question);
          if (answers === 'close') {
            socket.destroy();
            return;
          }
          for (const answer of answers) socket.write(encodeTcpFrame(answer));
        }
      });
      socket.on('error', () => undefined);
    });
    return upstream;
  }

  saw(name: string): boolean {
    return this.seen.some((question) => question.name === name);
  }

  async close(): Promise<void> {
    for (const socket of this.tcpSockets) socket.destroy();
    await Promise.all([new Promise<void>((resolve) => this.udp.close(() => resolve())), new Promise<void>((resolve) => this.tcp.close(() => resolve()))]);
  }
}

/** A response to `query` carrying `answers`, encoded by dns-packet (the question echoed as asked). */
export function answerWith(query: Buffer, answers: dnsPacket.Answer[], options: { rcode?: number; truncated?: boolean } = {}): Buffer {
  const decoded = dnsPacket.decode(query);
  const flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (options.truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | (options.rcode ?? 0);
  return dnsPacket.encode({ type: 'response', id: decoded.id ?? 0, flags, questions: decoded.questions ?? [], answers });
}

/** Sends one datagram to the proxy and resolves with the first answer, or null after `timeoutMs`. */
export async function askUdp(port: number, message: Uint8Array, options: { address?: string; timeoutMs?: number } = {}): Promise<Buffer | null> {
  const address = options.address ?? '127.0.0.1';
  const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  try {
    return await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), options.timeoutMs ?? 3000);
      socket.on('message', (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      socket.send(message, port, address);
    });
  } finally {
    socket.close();
  }
}

/** Opens one TCP connection, writes all queries in a single write (pipelined) and collects `expected` answers. */
export async function askTcp(port: number, messages: Uint8Array[], expected = messages.length, timeoutMs = 3000): Promise<Buffer[]> {
  const socket = net.connect(port, '127.0.0.1');
  const decoder = new TcpFrameDecoder();
  const answers: Buffer[] = [];
  try {
    return await new Promise<Buffer[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${answers.length} of ${expected} TCP answers in ${timeoutMs} ms`)), timeoutMs);
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk)) answers.push(Buffer.from(frame));
        if (answers.length >= expected) {
          clearTimeout(timer);
          resolve(answers);
        }
      });
      socket.write(Buffer.concat(messages.map((message) => encodeTcpFrame(message))));
    });
  } finally {
    socket.destroy();
  }
}
