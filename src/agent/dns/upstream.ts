/**
 * The proxy's side towards its upstream resolver: one connected UDP socket and
 * a small pool of TCP connections, each multiplexing queries by a fresh random
 * 16-bit id. Nothing here knows about clients or policy.
 */
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { answersQuestion } from './dns-message.js';
import { HEADER_BYTES } from './dns-wire.js';
import { TcpFrameDecoder, encodeTcpFrame } from './tcp-frame.js';

/** One query on its way to the upstream. */
export interface UpstreamRequest {
  /** The query bytes, owned by the caller; the upstream id is written into them in place. */
  readonly message: Uint8Array;
  /** Offset just past the question, to check that an answer is for this question. */
  readonly questionEnd: number;
  /** performance.now() after which the request fails as timed out. */
  deadline: number;
  /** Set when the request was sent again (after its TCP connection closed, or a lost UDP datagram), only once. */
  resent: boolean;
  /** UDP: performance.now() after which the datagram is sent once more, in case it or its answer was lost. */
  retryAt?: number;
  answered(response: Uint8Array): void;
  failed(reason: string, timedOut: boolean): void;
}

/** Random 16-bit ids from a refilled pool, so the hot path does not call into crypto per query. */
export class IdSource {
  private readonly pool = new Uint16Array(2048);
  private next = this.pool.length;

  draw(): number {
    if (this.next >= this.pool.length) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    return this.pool[this.next++]!;
  }
}

/** In-flight requests keyed by upstream id. Bounded, and no two share an id. */
export class PendingTable {
  private readonly entries = new Map<number, UpstreamRequest>();

  constructor(
    private readonly ids: IdSource,
    readonly capacity: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The id the request was filed under, or null when the table is full. */
  add(request: UpstreamRequest): number | null {
    if (this.entries.size >= this.capacity) return null;
    // The table is at most a quarter full of 65,536 ids, so 64 draws all colliding
    // has probability below 2^-128.
    for (let attempt = 0; attempt < 64; attempt++) {
      const id = this.ids.draw();
      if (!this.entries.has(id)) {
        this.entries.set(id, request);
        return id;
      }
    }
    return null;
  }

  /** Takes the request a response answers; an unsolicited or mismatched response takes nothing. */
  take(response: Uint8Array): UpstreamRequest | undefined {
    if (response.length < HEADER_BYTES) return undefined;
    const id = (response[0]! << 8) | response[1]!;
    const request = this.entries.get(id);
    if (!request || !answersQuestion(request.message, request.questionEnd, response)) return undefined;
    this.entries.delete(id);
    return request;
  }

  /** Removes requests past their deadline and fails them. */
  expire(now: number, reason: string): void {
    for (const [id, request] of this.entries) {
      if (request.deadline > now) continue;
      this.entries.delete(id);
      request.failed(reason, true);
    }
  }

  /** Requests still waiting, with their ids. */
  waiting(): IterableIterator<[number, UpstreamRequest]> {
    return this.entries.entries();
  }

  drain(): UpstreamRequest[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}

function writeId(message: Uint8Array, id: number): void {
  message[0] = id >> 8;
  message[1] = id & 0xff;
}

export interface UpstreamAddress {
  readonly address: string;
  readonly port: number;
}

/** How long a UDP query waits for its answer before it is sent once more. */
const UDP_RETRY_MS = 400;

/** One UDP socket connected to the upstream: the kernel drops datagrams from anyone else. */
export class UdpUpstream {
  private readonly table: PendingTable;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly upstream: UpstreamAddress,
    ids: IdSource,
    capacity: number,
  ) {
    this.table = new PendingTable(ids, capacity);
    socket.on('message', (response) => this.table.take(response)?.answered(response));
    // Send errors and ICMP errors surface here; the request then times out.
    socket.on('error', () => undefined);
  }

  static async open(upstream: UpstreamAddress, ids: IdSource, capacity: number): Promise<UdpUpstream> {
    const socket = dgram.createSocket({ type: net.isIPv6(upstream.address) ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(upstream.port, upstream.address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      raiseReceiveBuffer(socket);
    } catch (error) {
      socket.close();
      throw error;
    }
    return new UdpUpstream(socket, upstream, ids, capacity);
  }

  /** False when too many queries are in flight. */
  send(request: UpstreamRequest): boolean {
    if (this.closed) return false;
    const id = this.table.add(request);
    if (id === null) return false;
    writeId(request.message, id);
    request.retryAt = performance.now() + Math.min(UDP_RETRY_MS, (request.deadline - performance.now()) / 3);
    this.socket.send(request.message);
    return true;
  }

  expire(now: number): void {
    // A burst can overflow a socket buffer on either side: like a stub resolver, send a
    // datagram that got no answer once more before giving up on it.
    for (const [, request] of this.table.waiting()) {
      if (request.resent || request.retryAt === undefined || request.retryAt > now || request.deadline <= now) continue;
      request.resent = true;
      this.socket.send(request.message);
    }
    this.table.expire(now, `no answer from upstream ${describe(this.upstream)} over UDP in time`);
  }

  /** Closes the socket; returns the requests still waiting. */
  close(): Promise<UpstreamRequest[]> {
    this.closed = true;
    const waiting = this.table.drain();
    return new Promise((resolve) => this.socket.close(() => resolve(waiting)));
  }
}

/** Bursts of answers queue in the socket buffer: ask for more than the default (the kernel caps it). */
export function raiseReceiveBuffer(socket: dgram.Socket): void {
  try {
    socket.setRecvBufferSize(4 * 1024 * 1024);
  } catch {
    // Capped or refused: the default buffer still works, only bursts drop sooner.
  }
}

export function describe(upstream: UpstreamAddress): string {
  return net.isIPv6(upstream.address) ? `[${upstream.address}]:${upstream.port}` : `${upstream.address}:${upstream.port}`;
}

export interface TcpPoolOptions {
  readonly maxConnections: number;
  readonly maxInFlightPerConnection: number;
  readonly idleMs: number;
}

/**
 * Up to `maxConnections` pipelined TCP connections to the upstream (RFC 7766),
 * opened on demand and closed when idle. A request whose connection closes
 * under it is sent once more on another connection, then fails.
 */
export class TcpUpstreamPool {
  private readonly connections = new Set<TcpUpstreamConnection>();
  private closed = false;
  private readonly allClosed: (() => void)[] = [];

  constructor(
    private readonly upstream: UpstreamAddress,
    private readonly ids: IdSource,
    private readonly options: TcpPoolOptions,
  ) {}

  /** False when every connection is full or the pool is closed. */
  send(request: UpstreamRequest): boolean {
    if (this.closed) return false;
    let best: TcpUpstreamConnection | undefined;
    for (const connection of this.connections) {
      if (!connection.usable || connection.table.size >= this.options.maxInFlightPerConnection) continue;
      if (!best || connection.table.size < best.table.size) best = connection;
    }
    if ((!best || best.table.size > 0) && this.connections.size < this.options.maxConnections) {
      best = new TcpUpstreamConnection(this, this.upstream, this.ids, this.options);
      this.connections.add(best);
    }
    return best ? best.send(request) : false;
  }

  expire(now: number): void {
    for (const connection of this.connections) {
      connection.table.expire(now, `no answer from upstream ${describe(this.upstream)} over TCP in time`);
    }
  }

  /** @internal called by a connection once its socket has closed. */
  connectionClosed(connection: TcpUpstreamConnection, waiting: UpstreamRequest[]): void {
    this.connections.delete(connection);
    for (const request of waiting) {
      if (!this.closed && !request.resent) {
        request.resent = true;
        if (this.send(request)) continue;
      }
      request.failed(`upstream ${describe(this.upstream)} closed the TCP connection before answering`, false);
    }
    if (this.connections.size === 0) for (const resolve of this.allClosed.splice(0)) resolve();
  }

  /** Destroys every connection; their waiting requests fail. Resolves when all sockets have closed. */
  close(): Promise<void> {
    this.closed = true;
    if (this.connections.size === 0) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.allClosed.push(resolve));
    for (const connection of this.connections) connection.destroy();
    return done;
  }
}

class TcpUpstreamConnection {
  readonly table: PendingTable;
  usable = true;
  private readonly socket: net.Socket;
  private readonly decoder = new TcpFrameDecoder();

  constructor(pool: TcpUpstreamPool, upstream: UpstreamAddress, ids: IdSource, options: TcpPoolOptions) {
    this.table = new PendingTable(ids, options.maxInFlightPerConnection);
    this.socket = net.connect({ host: upstream.address, port: upstream.port, noDelay: true });
    this.socket.setTimeout(options.idleMs);
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('timeout', () => {
      if (this.table.size === 0) this.socket.destroy();
      else this.socket.setTimeout(options.idleMs); // busy: look again later
    });
    this.socket.on('error', () => undefined); // 'close' follows
    this.socket.on('close', () => {
      this.usable = false;
      pool.connectionClosed(this, this.table.drain());
    });
  }

  send(request: UpstreamRequest): boolean {
    const id = this.table.add(request);
    if (id === null) return false;
    writeId(request.message, id);
    this.socket.write(encodeTcpFrame(request.message));
    return true;
  }

  destroy(): void {
    this.usable = false;
    this.socket.destroy();
  }

  private onData(chunk: Uint8Array): void {
    let frames: Uint8Array[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      this.destroy(); // a stream that cannot be framed cannot be trusted further
      return;
    }
    for (const frame of frames) this.table.take(frame)?.answered(frame);
  }
}
