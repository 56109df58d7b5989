// The servers of the test internet. Started by internet.ts inside the `P-inet` network
// namespace (nsenter --net=/run/netns/P-inet node --import tsx internet-server.ts); talks to
// the test over stdin/stdout in the line protocol of internet-control.ts and exits when its
// stdin closes, so it never outlives the test that started it.
//
//   198.51.100.53, [2001:db8::53]  :53 UDP+TCP   upstream resolver for the zone in internet-zone.ts
//   203.0.113.53                   :53 UDP+TCP, :853 TCP (plain)  rogue resolver, every name 203.0.113.99
//   every address                  :80 :443 :8443 TCP  HTTP "ok <local> <port> <Host>"; TLS: SNI logged, alert
//                                                       GET /bytes/N: N bytes streamed (bulk downloads)
//   every address                  :443 :9999 UDP      echo
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';
import {
  encodeLine,
  parseControlRequest,
  type ControlRequest,
  type DnsQuery,
  type Hit,
} from './internet-control.js';
import { bulkResponseHead, bulkTarget, classifyStreamStart, httpResponse, okBody, TLS_HANDSHAKE_FAILURE } from './internet-http.js';
import { openUdpEcho, type UdpEchoSocket } from './internet-udp-echo.js';
import { answerQuery, parseZoneRecords, resolve, rogueResolve, Zone, type Resolution } from './internet-zone.js';

const UPSTREAM_V4 = '198.51.100.53';
const UPSTREAM_V6 = '2001:db8::53';
const ROGUE_V4 = '203.0.113.53';
const HTTP_PORTS = [80, 443, 8443] as const;
const UDP_ECHO_PORTS = [443, 9999] as const;
/** Logs keep the newest entries only (at least half this many), so a flood (dnsperf) cannot exhaust memory. */
const MAX_LOG_ENTRIES = 100_000;
const IDLE_TIMEOUT_MS = 10_000;
const MAX_DNS_TCP_BUFFER = 2 + 65535;
/** One buffer, written again and again: a bulk body costs no allocation per chunk. */
const BULK_CHUNK = Buffer.alloc(1024 * 1024, 'x');

const zone = new Zone();
let hits: Hit[] = [];
let queries: DnsQuery[] = [];

function append<T>(list: T[], item: T): void {
  // Dropping the older half at once keeps each append O(1) on average under a flood.
  if (list.length >= MAX_LOG_ENTRIES) list.splice(0, MAX_LOG_ENTRIES / 2);
  list.push(item);
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; the logs use plain a.b.c.d. */
function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

type Answerer = (name: string, type: string) => Resolution;
type OnQuestion = (question: { name: string; type: string }, transport: 'udp' | 'tcp', from: string, port: number) => void;

function bindUdp(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolveBind, rejectBind) => {
    socket.once('error', rejectBind);
    socket.bind(port, address, () => {
      socket.off('error', rejectBind);
      resolveBind();
    });
  });
}

function listenTcp(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(options, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
}

async function serveDnsUdp(address: string, answerer: Answerer, onQuestion: OnQuestion): Promise<void> {
  const socket = dgram.createSocket(net.isIPv4(address) ? 'udp4' : 'udp6');
  socket.on('message', (packet, remote) => {
    const answered = answerQuery(packet, 'udp', answerer);
    if (answered.question) onQuestion(answered.question, 'udp', remote.address, 53);
    if (answered.response) socket.send(answered.response, remote.port, remote.address);
  });
  socket.on('error', (error) => process.stderr.write(`dns udp ${address}: ${error.message}\n`));
  await bindUdp(socket, 53, address);
}

async function serveDnsTcp(address: string, port: number, answerer: Answerer, onQuestion: OnQuestion): Promise<void> {
  const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length > MAX_DNS_TCP_BUFFER * 2) {
        socket.destroy();
        return;
      }
      while (buffer.length >= 2) {
        const length = buffer.readUInt16BE(0);
        if (buffer.length < 2 + length) break;
        const packet = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        const answered = answerQuery(packet, 'tcp', answerer);
        if (answered.question) onQuestion(answered.question, 'tcp', plainAddress(socket.remoteAddress), port);
        if (answered.response) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(answered.response.length);
          socket.write(Buffer.concat([prefix, answered.response]));
        }
      }
    });
  });
  await listenTcp(server, { host: address, port });
}

async function serveUpstream(address: string): Promise<void> {
  const answerer: Answerer = (name, type) => resolve(zone, name, type);
  const onQuestion: OnQuestion = (question, transport, from) =>
    append(queries, { name: question.name, type: question.type, transport, server: address, from });
  await Promise.all([serveDnsUdp(address, answerer, onQuestion), serveDnsTcp(address, 53, answerer, onQuestion)]);
}

async function serveRogue(): Promise<void> {
  const onQuestion: OnQuestion = (question, _transport, from, port) =>
    append(hits, { kind: 'dns-rogue', local: ROGUE_V4, port, from, host: question.name });
  await Promise.all([
    serveDnsUdp(ROGUE_V4, rogueResolve, onQuestion),
    serveDnsTcp(ROGUE_V4, 53, rogueResolve, onQuestion),
    serveDnsTcp(ROGUE_V4, 853, rogueResolve, onQuestion),
  ]);
}

/** Writes `size` bytes and closes, waiting for 'drain' whenever the socket's buffer is full. */
function streamBulk(socket: net.Socket, size: number): void {
  let left = size;
  const pump = (): void => {
    while (left > 0) {
      const length = Math.min(left, BULK_CHUNK.length);
      left -= length;
      if (!socket.write(length === BULK_CHUNK.length ? BULK_CHUNK : BULK_CHUNK.subarray(0, length))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

function answerHttp(socket: net.Socket, local: string, port: number, method: string, target: string, host: string | undefined): void {
  const bulk = bulkTarget(target);
  switch (bulk.kind) {
    case 'none':
      socket.end(httpResponse(200, okBody(local, port, host), method));
      return;
    case 'invalid':
      socket.end(httpResponse(400, `bad request: ${bulk.reason}`, method));
      return;
    case 'bytes':
      socket.write(bulkResponseHead(bulk.size));
      if (method === 'HEAD') socket.end();
      else streamBulk(socket, bulk.size);
      return;
  }
}

async function serveHttp(port: number): Promise<void> {
  const server = net.createServer((socket) => {
    let received = Buffer.alloc(0);
    const local = plainAddress(socket.localAddress);
    const from = plainAddress(socket.remoteAddress);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const start = classifyStreamStart(received);
      switch (start.kind) {
        case 'need-more':
          return;
        case 'http':
          append(hits, { kind: 'http', local, port, from, ...(start.host !== undefined ? { host: start.host } : {}) });
          answerHttp(socket, local, port, start.method, start.target, start.host);
          break;
        case 'tls':
          append(hits, { kind: 'tls', local, port, from, ...(start.serverName !== undefined ? { host: start.serverName } : {}) });
          socket.end(TLS_HANDSHAKE_FAILURE);
          break;
        case 'invalid':
          socket.end(httpResponse(400, `bad request: ${start.reason}`));
          break;
      }
      // The rest of the stream (a request body, the TLS handshake) is read and dropped.
      socket.off('data', onData);
      socket.resume();
    };
    socket.on('data', onData);
  });
  server.on('error', (error) => process.stderr.write(`http ${port}: ${error.message}\n`));
  await listenTcp(server, { host: '::', port, ipv6Only: false });
}

function serveUdpEcho(): UdpEchoSocket[] {
  return UDP_ECHO_PORTS.flatMap((port) =>
    ([4, 6] as const).map((family) =>
      openUdpEcho(family, port, (datagram) =>
        append(hits, { kind: 'udp', local: datagram.local, port: datagram.port, from: datagram.from }),
      ),
    ),
  );
}

function handle(request: ControlRequest): unknown {
  switch (request.op) {
    case 'hits':
      return hits;
    case 'clear-hits':
      hits = [];
      return null;
    case 'queries':
      return queries;
    case 'clear-queries':
      queries = [];
      return null;
    case 'set':
      zone.set(request.name, parseZoneRecords(request.records));
      return null;
  }
}

function listenForControl(): void {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    let id = -1;
    try {
      const request = parseControlRequest(line);
      id = request.id;
      process.stdout.write(encodeLine({ id, ok: true, result: handle(request) }));
    } catch (error) {
      process.stdout.write(encodeLine({ id, ok: false, error: error instanceof Error ? error.message : String(error) }));
    }
  });
  // The test that owns this internet is gone (or destroying it): nothing left to serve.
  lines.on('close', () => process.exit(0));
}

async function main(): Promise<void> {
  listenForControl();
  serveUdpEcho();
  await Promise.all([
    serveUpstream(UPSTREAM_V4),
    serveUpstream(UPSTREAM_V6),
    serveRogue(),
    ...HTTP_PORTS.map((port) => serveHttp(port)),
  ]);
  process.stdout.write(encodeLine({ ready: true, pid: process.pid }));
}

main().catch((error: unknown) => {
  process.stderr.write(`internet-server failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
