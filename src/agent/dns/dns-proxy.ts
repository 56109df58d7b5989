/**
 * The DNS proxy: the only resolver a protected job can reach. For each query it
 * asks a gate whether to forward; refused names are answered locally and never
 * leave the machine. A forwarded query's answer is handed to the gate, and only
 * released to the client once the gate has decided (the engine admits the
 * answer's addresses to the firewall there). The proxy knows nothing of policy.
 *
 * Transport choices:
 * - UDP clients are forwarded over one connected UDP socket with a fresh random
 *   id. A truncated (TC) upstream answer is fetched again over TCP and the gate
 *   sees the whole answer; if that is larger than the client's UDP payload size
 *   (its EDNS size, at least 512), the client gets an empty answer with TC set
 *   and retries over TCP, as a resolver would make it do.
 * - TCP clients are forwarded over a small pool of pipelined TCP connections;
 *   pipelined queries from one client are answered in whatever order they complete.
 * - A client's bytes go upstream as they came, only the id patched, so EDNS, DO
 *   and cookies pass; the answer is decoded once, for the gate.
 * - A malformed query gets FORMERR when its id can be read, except a
 *   response-shaped (QR=1) message, which is dropped: answering those lets two
 *   servers bounce errors at each other forever.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { RunwallError, isRunwallError } from '../../protocol/index.js';
import {
  answerFromQuery,
  decodeResponse,
  parseQuery,
  type DecodedResponse,
  type DnsQuestionInfo,
  type ParsedQuery,
} from './dns-message.js';
import { HEADER_BYTES, RCODE_NUMBERS } from './dns-wire.js';
import { TcpFrameDecoder, encodeTcpFrame } from './tcp-frame.js';
import { IdSource, TcpUpstreamPool, UdpUpstream, describe, raiseReceiveBuffer, type UpstreamRequest } from './upstream.js';

export type QueryDecision = { readonly action: 'forward' } | { readonly action: 'answer'; readonly rcode: 'NXDOMAIN' | 'REFUSED' };
/** `note`: the gate's own record of its decision, handed back in the exchange; the proxy never reads it. */
export type ResponseDecision<Note = unknown> = ({ readonly action: 'release' } | { readonly action: 'answer'; readonly rcode: 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL' }) & {
  readonly note?: Note;
};

/** One per client query, handed to `onExchange` when it is complete (answered, dropped or failed). */
export interface DnsExchange<Note = unknown> {
  readonly time: Date;
  /** 'ip:port', '[ip]:port' for IPv6. */
  readonly client: string;
  readonly transport: 'udp' | 'tcp';
  /** Null when the query could not be decoded. */
  readonly question: DnsQuestionInfo | null;
  readonly forwarded: boolean;
  /** Rcode sent to the client; null if nothing was sent. */
  readonly rcode: string | null;
  /** The upstream's answer, when forwarded and answered. */
  readonly response: DecodedResponse | null;
  /**
   * What onResponse decided, as it returned it; null when it decided nothing for this query (not
   * forwarded, no answer, or its decision came too late). The gate's per-query state travels here.
   */
  readonly decision: ResponseDecision<Note> | null;
  readonly error?: { readonly code: string; readonly message: string };
  readonly durationMs: number;
}

export interface DnsGate<Note = unknown> {
  onQuery(question: DnsQuestionInfo, client: string): QueryDecision;
  /** Awaited before the answer is released: this is where addresses are admitted to the firewall. */
  onResponse(question: DnsQuestionInfo, response: DecodedResponse, client: string): ResponseDecision<Note> | Promise<ResponseDecision<Note>>;
  onExchange(exchange: DnsExchange<Note>): void;
}

export interface DnsProxyOptions<Note = unknown> {
  /** UDP and TCP on each. */
  readonly listen: readonly { readonly address: string; readonly port: number }[];
  readonly upstream: { readonly address: string; readonly port: number };
  readonly gate: DnsGate<Note>;
  /** Default 4000; then SERVFAIL to the client. Also bounds how long the gate may take over an answer. */
  readonly upstreamTimeoutMs?: number;
  /** Default 256; idle TCP clients are closed after 10 s. */
  readonly maxTcpClients?: number;
}

export interface DnsProxyStats {
  queries: number;
  forwarded: number;
  answeredLocally: number;
  malformed: number;
  upstreamTimeouts: number;
}

// Stub resolvers wait 5 s before their own retry; answering SERVFAIL sooner stops them retrying a busy upstream.
const DEFAULT_UPSTREAM_TIMEOUT_MS = 4000;
const DEFAULT_MAX_TCP_CLIENTS = 256;
const TCP_IDLE_MS = 10_000;
/** Bounds the pending map: a quarter of the 16-bit id space. */
const MAX_UDP_IN_FLIGHT = 16_384;
const TCP_POOL = { maxConnections: 4, maxInFlightPerConnection: 1024, idleMs: TCP_IDLE_MS } as const;
/** Answers held while the gate decides: bounded in count here and in time by the upstream timeout. */
const MAX_AWAITING_GATE = 16_384;
/** A TCP client with this many unanswered queries is not read from until some are answered. */
const MAX_TCP_CLIENT_IN_FLIGHT = 64;

type ErrorData = { readonly code: string; readonly message: string };
/** Called exactly once per client query: the bytes to send back, or null for none. */
type Reply = (message: Uint8Array | null) => void;

function errorData(error: unknown, context?: string): ErrorData {
  const prefix = context ? `${context}: ` : '';
  if (isRunwallError(error)) return Object.freeze({ code: error.code, message: prefix + error.message });
  const message = error instanceof Error ? error.message : String(error);
  return Object.freeze({ code: 'RW_INTERNAL', message: `${prefix}${message}` });
}

function formatClient(address: string, port: number, family: string | undefined): string {
  return family === 'IPv6' ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The client's address without its port: each query of a resolver library comes from a fresh port. */
export function clientAddress(client: string): string {
  const colon = client.lastIndexOf(':');
  if (colon < 0) return client;
  // `[v6]:port` or `v4:port`; a bare v6 address without brackets has no port to strip.
  if (client.startsWith('[') || client.indexOf(':') === colon) return client.slice(0, colon);
  return client;
}

function isLocalQueryRcode(rcode: unknown): rcode is 'NXDOMAIN' | 'REFUSED' {
  return rcode === 'NXDOMAIN' || rcode === 'REFUSED';
}

function isLocalResponseRcode(rcode: unknown): rcode is 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL' {
  return rcode === 'NXDOMAIN' || rcode === 'REFUSED' || rcode === 'SERVFAIL';
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** A forwarded client query, from the moment it is sent upstream until the client is answered. */
class ForwardedQuery<Note> implements UpstreamRequest {
  deadline: number;
  resent = false;
  /** Fetched (again) over TCP after a truncated UDP answer. */
  viaTcp = false;
  response: DecodedResponse | null = null;
  decision: ResponseDecision<Note> | null = null;
  done = false;

  constructor(
    private readonly proxy: DnsProxy<Note>,
    readonly message: Uint8Array,
    readonly parsed: ParsedQuery,
    readonly client: string,
    readonly transport: 'udp' | 'tcp',
    readonly reply: Reply,
    readonly receivedAt: number,
    readonly started: number,
    timeoutMs: number,
  ) {
    this.deadline = started + timeoutMs;
  }

  get questionEnd(): number {
    return this.parsed.questionEnd;
  }

  answered(response: Uint8Array): void {
    this.proxy.upstreamAnswered(this, response);
  }

  failed(reason: string, timedOut: boolean): void {
    this.proxy.upstreamFailed(this, reason, timedOut);
  }
}

interface Listener {
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
}

export class DnsProxy<Note = unknown> {
  /** Actually bound (port 0 became a real port, the same for UDP and TCP). */
  readonly addresses: readonly { address: string; port: number }[];
  private readonly boundAddresses: { address: string; port: number }[] = [];
  private readonly gate: DnsGate<Note>;
  private readonly timeoutMs: number;
  private readonly maxTcpClients: number;
  private readonly ids = new IdSource();
  private readonly counters: DnsProxyStats = { queries: 0, forwarded: 0, answeredLocally: 0, malformed: 0, upstreamTimeouts: 0 };
  private readonly listeners: Listener[] = [];
  private readonly tcpClients = new Set<net.Socket>();
  /** Answers waiting for the gate's promise; bounded in time by the sweep. */
  private readonly awaitingGate = new Set<ForwardedQuery<Note>>();
  private udpUpstream: UdpUpstream | null = null;
  private readonly tcpUpstream: TcpUpstreamPool;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(private readonly options: DnsProxyOptions<Note>) {
    this.addresses = this.boundAddresses;
    this.gate = options.gate;
    this.timeoutMs = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.maxTcpClients = options.maxTcpClients ?? DEFAULT_MAX_TCP_CLIENTS;
    this.tcpUpstream = new TcpUpstreamPool(options.upstream, this.ids, TCP_POOL);
    // One timer for every deadline instead of one per query.
    const tick = Math.min(100, Math.max(5, Math.floor(this.timeoutMs / 10)));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  /**
   * Binds UDP and TCP on every listen address and opens the upstream socket.
   * Throws RunwallError RW_DNS_BIND_FAILED naming the address when a bind fails
   * (after closing whatever it had opened), RW_UPSTREAM_INVALID for an upstream
   * that is not an IP address and port.
   */
  static async start<Note = unknown>(options: DnsProxyOptions<Note>): Promise<DnsProxy<Note>> {
    const { upstream } = options;
    if (!net.isIP(upstream.address) || !Number.isInteger(upstream.port) || upstream.port < 1 || upstream.port > 65535) {
      throw new RunwallError('RW_UPSTREAM_INVALID', `DNS upstream '${upstream.address}' port ${upstream.port} is not an IP address and port`, {
        address: upstream.address,
        port: upstream.port,
      });
    }
    if (options.listen.length === 0) throw new RangeError('dns: the proxy needs at least one listen address');
    if (options.upstreamTimeoutMs !== undefined && !(Number.isInteger(options.upstreamTimeoutMs) && options.upstreamTimeoutMs > 0)) {
      throw new RangeError(`dns: upstreamTimeoutMs ${options.upstreamTimeoutMs} is not a positive integer`);
    }
    if (options.maxTcpClients !== undefined && !(Number.isInteger(options.maxTcpClients) && options.maxTcpClients > 0)) {
      throw new RangeError(`dns: maxTcpClients ${options.maxTcpClients} is not a positive integer`);
    }
    const proxy = new DnsProxy<Note>(options);
    try {
      proxy.udpUpstream = await UdpUpstream.open(upstream, proxy.ids, MAX_UDP_IN_FLIGHT);
      for (const { address, port } of options.listen) await proxy.listen(address, port);
    } catch (error) {
      await proxy.close();
      if (isRunwallError(error)) throw error;
      throw new RunwallError('RW_DNS_BIND_FAILED', `cannot open the DNS proxy's upstream socket towards ${describe(upstream)}: ${String(error)}`, {}, { cause: error });
    }
    return proxy;
  }

  stats(): DnsProxyStats {
    return { ...this.counters };
  }

  /** Stops listening, answers nothing more, closes upstream sockets and TCP clients; resolves when all is closed. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const closings: Promise<unknown>[] = [];
    for (const { udp, tcp } of this.listeners) {
      closings.push(new Promise<void>((resolve) => udp.close(() => resolve())));
      closings.push(new Promise<void>((resolve) => tcp.close(() => resolve())));
    }
    for (const socket of this.tcpClients) socket.destroy();
    const udpUpstream = this.udpUpstream;
    if (udpUpstream) {
      closings.push(
        udpUpstream.close().then((waiting) => {
          for (const request of waiting) request.failed('the proxy closed before the upstream answered', false);
        }),
      );
    }
    closings.push(this.tcpUpstream.close());
    for (const query of this.awaitingGate) this.finish(query, null, null, errorData(new RunwallError('RW_INTERNAL', 'the proxy closed while the gate was deciding')));
    this.awaitingGate.clear();
    await Promise.all(closings);
  }

  // ---- listening -------------------------------------------------------------

  private async listen(address: string, port: number): Promise<void> {
    if (!net.isIP(address) || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw bindFailed(address, port, 'udp', `'${address}' port ${port} is not an IP address and port`);
    }
    // With port 0, the UDP port is chosen first and TCP must get the same one; retry a few times if TCP's is taken.
    const attempts = port === 0 ? 8 : 1;
    for (let attempt = 1; ; attempt++) {
      // IPv6 sockets only take IPv6, so '::' and '0.0.0.0' can both be listened on.
      const udp = net.isIPv6(address)
        ? dgram.createSocket({ type: 'udp6', ipv6Only: true, lookup: addressAsIs })
        : dgram.createSocket({ type: 'udp4', lookup: addressAsIs });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(port, address, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        closeQuietly(udp);
        throw bindFailed(address, port, 'udp', errorCode(error), error);
      }
      const boundPort = udp.address().port;
      const tcp = net.createServer({ allowHalfOpen: true }, (socket) => this.acceptTcpClient(socket));
      tcp.maxConnections = this.maxTcpClients;
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: address, port: boundPort, ipv6Only: net.isIPv6(address) }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        if (port === 0 && attempt < attempts && errorCode(error) === 'EADDRINUSE') continue;
        throw bindFailed(address, boundPort, 'tcp', errorCode(error), error);
      }
      raiseReceiveBuffer(udp);
      udp.on('error', () => undefined); // a failed send to one client must not stop the proxy
      udp.on('message', (message, remote) => {
        const client = formatClient(remote.address, remote.port, remote.family);
        this.handleQuery(message, client, 'udp', (answer) => {
          if (answer && !this.closed) udp.send(answer, remote.port, remote.address);
        });
      });
      tcp.on('error', () => undefined);
      this.listeners.push({ udp, tcp });
      this.boundAddresses.push({ address, port: boundPort });
      return;
    }
  }

  private acceptTcpClient(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.tcpClients.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(TCP_IDLE_MS);
    const client = formatClient(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0, socket.remoteFamily);
    const decoder = new TcpFrameDecoder();
    let inFlight = 0;
    let paused = false;
    let ended = false;
    const reply: Reply = (answer) => {
      inFlight--;
      if (answer && !socket.destroyed && !this.closed) socket.write(encodeTcpFrame(answer));
      if (paused && inFlight < MAX_TCP_CLIENT_IN_FLIGHT) {
        paused = false;
        socket.resume();
      }
      if (ended && inFlight === 0) socket.end();
    };
    socket.on('data', (chunk) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy(); // cannot be framed: nothing after it can be trusted
        return;
      }
      for (const frame of frames) {
        inFlight++;
        this.handleQuery(frame, client, 'tcp', reply);
      }
      if (inFlight >= MAX_TCP_CLIENT_IN_FLIGHT && !paused) {
        paused = true;
        socket.pause();
      }
    });
    // The client may half-close after its last query: answer what it asked, then close.
    socket.on('end', () => {
      ended = true;
      if (inFlight === 0) socket.end();
    });
    socket.on('timeout', () => {
      if (inFlight === 0) socket.destroy();
      else socket.setTimeout(TCP_IDLE_MS);
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.tcpClients.delete(socket));
  }

  // ---- one query -------------------------------------------------------------

  private handleQuery(message: Uint8Array, client: string, transport: 'udp' | 'tcp', reply: Reply): void {
    if (this.closed) {
      reply(null);
      return;
    }
    const receivedAt = Date.now();
    const started = performance.now();
    this.counters.queries++;
    let parsed: ParsedQuery;
    try {
      parsed = parseQuery(message);
    } catch (error) {
      this.counters.malformed++;
      // Never answer a response-shaped message (QR=1): see the header comment.
      const answerable = message.length >= HEADER_BYTES && (message[2]! & 0x80) === 0;
      const answer = answerable ? answerFromQuery(message, HEADER_BYTES, (message[0]! << 8) | message[1]!, RCODE_NUMBERS.FORMERR, false) : null;
      reply(answer);
      this.emit(receivedAt, started, client, transport, null, false, answer ? 'FORMERR' : null, null, null, errorData(error));
      return;
    }
    const { question } = parsed;
    let decision: QueryDecision;
    try {
      decision = this.gate.onQuery(question, client);
    } catch (error) {
      this.answerLocally(message, parsed, reply, receivedAt, started, client, transport, 'SERVFAIL', errorData(error, 'gate.onQuery'));
      return;
    }
    if (decision.action === 'forward') {
      this.counters.forwarded++;
      const query = new ForwardedQuery(this, message, parsed, client, transport, reply, receivedAt, started, this.timeoutMs);
      const sent = this.awaitingGate.size < MAX_AWAITING_GATE && (transport === 'udp' ? this.udpUpstream!.send(query) : this.tcpUpstream.send(query));
      if (!sent) this.finishLocally(query, 'SERVFAIL', { code: 'RW_DNS_UPSTREAM_FAILED', message: `too many queries in flight to upstream ${describe(this.options.upstream)}` });
    } else if (decision.action === 'answer' && isLocalQueryRcode(decision.rcode)) {
      this.counters.answeredLocally++;
      this.answerLocally(message, parsed, reply, receivedAt, started, client, transport, decision.rcode);
    } else {
      const shown = JSON.stringify(decision);
      this.answerLocally(message, parsed, reply, receivedAt, started, client, transport, 'SERVFAIL', {
        code: 'RW_INTERNAL',
        message: `gate.onQuery returned an unknown decision ${shown}`,
      });
    }
  }

  private answerLocally(
    message: Uint8Array,
    parsed: ParsedQuery,
    reply: Reply,
    receivedAt: number,
    started: number,
    client: string,
    transport: 'udp' | 'tcp',
    rcode: 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL',
    error?: ErrorData,
  ): void {
    const answer = answerFromQuery(message, parsed.questionEnd, parsed.question.id, RCODE_NUMBERS[rcode], false);
    reply(answer);
    this.emit(receivedAt, started, client, transport, parsed.question, false, rcode, null, null, error);
  }

  /** @internal from ForwardedQuery: the upstream answered. */
  upstreamAnswered(query: ForwardedQuery<Note>, answer: Uint8Array): void {
    if (query.done) return;
    let response: DecodedResponse;
    try {
      response = decodeResponse(answer);
    } catch (error) {
      this.finishLocally(query, 'SERVFAIL', errorData(error, `answer from upstream ${describe(this.options.upstream)}`));
      return;
    }
    if (response.truncated && !query.viaTcp) {
      query.viaTcp = true;
      query.deadline = performance.now() + this.timeoutMs;
      if (!this.tcpUpstream.send(query)) {
        this.finishLocally(query, 'SERVFAIL', { code: 'RW_DNS_UPSTREAM_FAILED', message: 'truncated answer and no TCP connection to the upstream free' });
      }
      return;
    }
    query.response = response;
    let decision: ResponseDecision<Note> | PromiseLike<ResponseDecision<Note>>;
    try {
      decision = this.gate.onResponse(query.parsed.question, response, query.client);
    } catch (error) {
      this.finishLocally(query, 'SERVFAIL', errorData(error, 'gate.onResponse'));
      return;
    }
    if (!isThenable(decision)) {
      this.release(query, answer, decision);
      return;
    }
    query.deadline = performance.now() + this.timeoutMs;
    this.awaitingGate.add(query);
    decision.then(
      (settled) => {
        if (this.awaitingGate.delete(query)) this.release(query, answer, settled);
      },
      (error: unknown) => {
        if (this.awaitingGate.delete(query)) this.finishLocally(query, 'SERVFAIL', errorData(error, 'gate.onResponse'));
      },
    );
  }

  /** @internal from ForwardedQuery: timed out, or the upstream connection closed. */
  upstreamFailed(query: ForwardedQuery<Note>, reason: string, timedOut: boolean): void {
    if (query.done) return;
    if (timedOut) this.counters.upstreamTimeouts++;
    this.finishLocally(query, 'SERVFAIL', { code: 'RW_DNS_UPSTREAM_FAILED', message: reason });
  }

  private release(query: ForwardedQuery<Note>, answer: Uint8Array, decision: ResponseDecision<Note>): void {
    if (query.done) return;
    query.decision = decision;
    const response = query.response!;
    if (decision?.action === 'release') {
      const clientId = query.parsed.question.id;
      if (query.transport === 'udp' && answer.length > query.parsed.udpPayloadSize) {
        const truncated = answerFromQuery(query.message, query.questionEnd, clientId, answer[3]! & 0xf, true);
        this.finish(query, truncated, response.rcode);
        return;
      }
      answer[0] = clientId >> 8; // the answer's bytes are ours: patch the id in place
      answer[1] = clientId & 0xff;
      this.finish(query, answer, response.rcode);
    } else if (decision?.action === 'answer' && isLocalResponseRcode(decision.rcode)) {
      this.finishLocally(query, decision.rcode);
    } else {
      this.finishLocally(query, 'SERVFAIL', { code: 'RW_INTERNAL', message: `gate.onResponse returned an unknown decision ${JSON.stringify(decision)}` });
    }
  }

  private finishLocally(query: ForwardedQuery<Note>, rcode: 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL', error?: ErrorData): void {
    const answer = answerFromQuery(query.message, query.questionEnd, query.parsed.question.id, RCODE_NUMBERS[rcode], false);
    this.finish(query, answer, rcode, error);
  }

  private finish(query: ForwardedQuery<Note>, answer: Uint8Array | null, rcode: string | null, error?: ErrorData): void {
    if (query.done) return;
    query.done = true;
    const sent = this.closed ? null : answer;
    query.reply(sent);
    this.emit(query.receivedAt, query.started, query.client, query.transport, query.parsed.question, true, sent ? rcode : null, query.response, query.decision, error);
  }

  private emit(
    receivedAt: number,
    started: number,
    client: string,
    transport: 'udp' | 'tcp',
    question: DnsQuestionInfo | null,
    forwarded: boolean,
    rcode: string | null,
    response: DecodedResponse | null,
    decision: ResponseDecision<Note> | null,
    error?: ErrorData,
  ): void {
    const exchange: DnsExchange<Note> = Object.freeze({
      time: new Date(receivedAt),
      client,
      transport,
      question,
      forwarded,
      rcode,
      response,
      decision,
      ...(error ? { error } : {}),
      durationMs: performance.now() - started,
    });
    try {
      this.gate.onExchange(exchange);
    } catch {
      // The gate's bookkeeping failing must not take the resolver down with it.
    }
  }

  private sweep(): void {
    const now = performance.now();
    this.udpUpstream?.expire(now);
    this.tcpUpstream.expire(now);
    for (const query of this.awaitingGate) {
      if (query.deadline > now) continue;
      this.awaitingGate.delete(query);
      this.finishLocally(query, 'SERVFAIL', { code: 'RW_INTERNAL', message: `gate.onResponse did not decide within ${this.timeoutMs} ms` });
    }
  }
}

/**
 * dgram's lookup for the listening sockets, which only ever answer the address a query came
 * from (always an IP address): the default (dns.lookup) hands even an IP address back on the
 * next tick, so an answer would wait for everything else the current callback does (the
 * exchange's event). This one answers at once, so send() sends before it returns.
 */
function addressAsIs(address: string, _family: unknown, callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = net.isIP(address);
  if (family === 0) callback(Object.assign(new Error(`dns: not an IP address: ${address}`), { code: 'EINVAL' }), address, 0);
  else callback(null, address, family);
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Never bound: nothing to close.
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}

function bindFailed(address: string, port: number, transport: 'udp' | 'tcp', reason: string, cause?: unknown): RunwallError {
  const where = net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
  return new RunwallError('RW_DNS_BIND_FAILED', `the DNS proxy cannot listen on ${where} (${transport}): ${reason}`, { address, port, transport }, { cause });
}
