/**
 * A non-blocking netlink socket read from the Node event loop (libuv poll, as
 * nflog.ts does), for the kernel interfaces that only talk to the initial
 * network namespace: audit multicast and the proc connector deliver only to
 * sockets there, and `runwall exec` may itself run inside another one. The
 * socket is created there with a short setns() on the calling thread (two
 * synchronous calls; nothing else runs on this thread in between) and is
 * usable from anywhere afterwards.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import koffi from 'koffi';
import { RunwallError } from '../../protocol/index.js';
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  MSG_TRUNC,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  errnoName,
  libc,
  watchReadable,
  type FdWatcher,
  type Libc,
} from './ffi.js';

export const NETLINK_AUDIT = 9;
export const NETLINK_CONNECTOR = 11;
const CLONE_NEWNET = 0x40000000;
const DATAGRAM_BUFFER_BYTES = 64 * 1024;

let setnsCall: ((fd: number, nstype: number) => number) | undefined;

function setns(fd: number, nstype: number): { ok: boolean; errno: string } {
  setnsCall ??= koffi.load('libc.so.6').func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
  const result = setnsCall(fd, nstype);
  return result === 0 ? { ok: true, errno: '' } : { ok: false, errno: errnoName(koffi.errno()) };
}

/**
 * The machine's own network namespace: kthreadd's (kernel threads always run in
 * the initial namespaces, and PID 1 may hide its own), else PID 1's.
 */
function initialNetnsPath(): string {
  try {
    if (readFileSync('/proc/2/comm', 'utf8').trim() === 'kthreadd') return '/proc/2/ns/net';
  } catch {
    // No PID 2 here: a PID namespace of its own.
  }
  return '/proc/1/ns/net';
}

/** True when this thread is in the machine's own network namespace (or that cannot be told). */
export function inInitialNetns(): boolean {
  try {
    return statSync('/proc/thread-self/ns/net').ino === statSync(initialNetnsPath()).ino;
  } catch {
    return true; // the initial namespace is hidden from us: stay where we are
  }
}

/** Runs `create` with this thread in the machine's own network namespace, then returns to its own. */
function inInitNetns<T>(create: () => T): T {
  const init = openSync(initialNetnsPath(), 'r');
  const own = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const entered = setns(init, CLONE_NEWNET);
    if (!entered.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot enter the initial network namespace: ${entered.errno}`);
    try {
      return create();
    } finally {
      const back = setns(own, CLONE_NEWNET);
      // Staying in the wrong namespace would silently move every later socket of this process.
      if (!back.ok) throw new RunwallError('RW_INTERNAL', `cannot return to runwall's network namespace: ${back.errno}`);
    }
  } finally {
    closeSync(init);
    closeSync(own);
  }
}

export interface NetlinkSocketOptions {
  readonly protocol: number;
  /** Multicast group bitmask for bind (0: none). */
  readonly groups: number;
  /** Create the socket in PID 1's network namespace. */
  readonly initialNetns: boolean;
  readonly receiveBufferBytes: number;
  /** Datagrams read per readiness callback, so a flood cannot starve the event loop. */
  readonly datagramsPerWakeup: number;
  /** For messages: "audit", "proc connector". */
  readonly name: string;
}

export interface NetlinkReadProblem {
  /** The kernel dropped datagrams (ENOBUFS): the reader fell behind. */
  readonly lost: boolean;
  readonly message: string;
}

/** One netlink socket: send requests, receive datagrams on the event loop (after start()). */
export class NetlinkSocket {
  #closed = false;
  #watcher: FdWatcher | null = null;
  readonly #buffer = new Uint8Array(DATAGRAM_BUFFER_BYTES);
  #onDatagram: ((datagram: Uint8Array) => void) | null = null;
  #onProblem: ((problem: NetlinkReadProblem) => void) | null = null;

  private constructor(
    private readonly lib: Libc,
    readonly fd: number,
    private readonly options: NetlinkSocketOptions,
  ) {}

  /** RW_PLATFORM_MISSING when the kernel lacks the protocol; RW_SETUP_FAILED when it refuses the socket or group. */
  static open(options: NetlinkSocketOptions): NetlinkSocket {
    const lib = libc();
    const create = (): number => {
      const created = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, options.protocol);
      if (!created.ok) {
        const missing = created.errnoName === 'EPROTONOSUPPORT' || created.errnoName === 'EAFNOSUPPORT';
        throw new RunwallError(missing ? 'RW_PLATFORM_MISSING' : 'RW_SETUP_FAILED', `cannot open the ${options.name} netlink socket: ${created.errnoName}`);
      }
      return created.value;
    };
    const fd = options.initialNetns && !inInitialNetns() ? inInitNetns(create) : create();
    try {
      const size = int32(options.receiveBufferBytes);
      if (!lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size).ok) lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size);
      // struct sockaddr_nl { u16 family; u16 pad; u32 portid (0: the kernel assigns); u32 groups; }
      const address = new Uint8Array(12);
      const view = new DataView(address.buffer);
      view.setUint16(0, AF_NETLINK, true);
      view.setUint32(8, options.groups, true);
      const bound = lib.bind(fd, address);
      if (!bound.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot bind the ${options.name} netlink socket: ${bound.errnoName}`);
    } catch (error) {
      lib.close(fd);
      throw error;
    }
    return new NetlinkSocket(lib, fd, options);
  }

  send(message: Uint8Array): void {
    const sent = this.lib.send(this.fd, message, 0);
    if (!sent.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot send to the ${this.options.name} netlink socket: ${sent.errnoName}`);
  }

  /** One datagram if one is queued, else null (never waits). */
  receiveNow(): Uint8Array | null {
    for (let attempt = 0; attempt < 8; attempt++) {
      const received = this.lib.recv(this.fd, this.#buffer, MSG_DONTWAIT | MSG_TRUNC);
      if (received.ok) return this.#buffer.slice(0, Math.min(received.value, this.#buffer.byteLength));
      if (received.errnoName === 'EINTR' || received.errnoName === 'ENOBUFS') continue;
      return null;
    }
    return null;
  }

  /** Delivers datagrams from the event loop until close(). */
  start(onDatagram: (datagram: Uint8Array) => void, onProblem: (problem: NetlinkReadProblem) => void): void {
    this.#onDatagram = onDatagram;
    this.#onProblem = onProblem;
    this.#watcher = watchReadable(this.fd, (pollError) => {
      if (pollError !== null) this.#report({ lost: false, message: `${this.options.name}: ${pollError}` });
      else this.drain(this.options.datagramsPerWakeup);
    });
  }

  /**
   * Reads what is queued now (at most `limit` datagrams) and delivers it.
   * Callers that need the stream up to date (attribution) call it synchronously.
   */
  drain(limit = Number.MAX_SAFE_INTEGER): void {
    const deliver = this.#onDatagram;
    if (!deliver) return;
    for (let i = 0; i < limit && !this.#closed; i++) {
      const received = this.lib.recv(this.fd, this.#buffer, MSG_DONTWAIT | MSG_TRUNC);
      if (!received.ok) {
        if (received.errnoName === 'EAGAIN' || received.errnoName === 'EWOULDBLOCK') return;
        if (received.errnoName === 'EINTR') continue;
        if (received.errnoName === 'ENOBUFS') {
          this.#report({ lost: true, message: `${this.options.name}: the socket buffer overran; the kernel dropped messages` });
          continue;
        }
        this.#report({ lost: false, message: `${this.options.name}: recv failed: ${received.errnoName}` });
        return;
      }
      if (received.value > this.#buffer.byteLength) {
        this.#report({ lost: true, message: `${this.options.name}: a ${received.value}-byte datagram was truncated; dropped` });
        continue;
      }
      try {
        deliver(this.#buffer.subarray(0, received.value));
      } catch (error) {
        this.#report({ lost: false, message: `${this.options.name}: the handler threw: ${error instanceof Error ? error.message : String(error)}` });
      }
    }
  }

  #report(problem: NetlinkReadProblem): void {
    try {
      this.#onProblem?.(problem);
    } catch {
      // A problem handler that throws has nowhere further to report to; keep reading.
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // libuv must stop watching the fd before it is closed.
    this.#watcher?.close();
    this.#watcher = null;
    this.lib.close(this.fd);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, true);
  return bytes;
}
