/**
 * NFQUEUE reader and verdict sender: a raw NETLINK_NETFILTER socket bound to
 * one queue (iptables `-j NFQUEUE --queue-num N`), read from the Node event
 * loop through a libuv poll watcher as nflog.ts does. Decoding and encoding
 * are nfqueue-message.ts (pure).
 *
 * Fail closed: every queued packet waits for a verdict from this reader. If
 * the reader is gone (closed, crashed, never bound), the kernel drops what the
 * rules queue (the rules never say --queue-bypass in block mode), so a flow
 * that needs a verdict fails rather than passing unchecked.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RunwallError, type ErrorCode } from '../../protocol/index.js';
import {
  AF_NETLINK,
  libc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_NETFILTER,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  errnoName,
  watchReadable,
  type FdWatcher,
  type Libc,
} from './ffi.js';
import { findNetlinkAck } from './nflog-message.js';
import {
  decodeNfqueueMessages,
  encodeNfqueueBind,
  encodeNfqueueVerdict,
  type QueuedPacket,
  type QueueVerdict,
} from './nfqueue-message.js';

export interface NfqueueReaderError {
  readonly code: Extract<ErrorCode, 'RW_NFQUEUE_MALFORMED' | 'RW_NFQUEUE_LOST' | 'RW_INTERNAL'>;
  readonly message: string;
  /** A packet that could not be decoded but still holds a place in the queue: give it a verdict. */
  readonly id?: number;
}

/** Bytes of each packet copied: a whole segment of the usual MTU with room for a GSO packet's first part. */
const COPY_RANGE = 0xffff;
/** Packets the kernel holds for a verdict; beyond it, new ones are dropped (and TCP sends them again). */
const QUEUE_MAX_LENGTH = 8192;
const RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024;
const DATAGRAM_BUFFER_BYTES = 128 * 1024;
/** Datagrams read per readiness callback, so a flood cannot starve the event loop (poll is level-triggered). */
const DATAGRAMS_PER_WAKEUP = 128;
const ACK_WAIT_MS = 1000;
const ACK_POLL_MS = 5;
const SEND_ATTEMPTS = 8;

export class NfqueueReader {
  #closed = false;
  readonly #buffer = new Uint8Array(DATAGRAM_BUFFER_BYTES);
  #watcher: FdWatcher | null = null;

  private constructor(
    private readonly lib: Libc,
    private readonly fd: number,
    readonly queue: number,
    private readonly onPacket: (packet: QueuedPacket) => void,
    private readonly onError: (error: NfqueueReaderError) => void,
  ) {}

  /**
   * Binds `queue` (0-65535) in the current network namespace. RW_PLATFORM_MISSING
   * without nfnetlink_queue; RW_SETUP_FAILED otherwise (EBUSY: another reader
   * holds the queue).
   */
  static async open(
    queue: number,
    onPacket: (packet: QueuedPacket) => void,
    onError: (error: NfqueueReaderError) => void,
  ): Promise<NfqueueReader> {
    if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) {
      throw new RunwallError('RW_SETUP_FAILED', `NFQUEUE number ${queue} is not an integer in 0-65535`);
    }
    const lib = libc();
    const socket = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (!socket.ok) {
      const missing = socket.errnoName === 'EPROTONOSUPPORT' || socket.errnoName === 'EAFNOSUPPORT';
      throw new RunwallError(
        missing ? 'RW_PLATFORM_MISSING' : 'RW_SETUP_FAILED',
        missing ? `the kernel has no nfnetlink (NETLINK_NETFILTER socket: ${socket.errnoName})` : `cannot open a netfilter netlink socket: ${socket.errnoName}`,
        { queue },
      );
    }
    const fd = socket.value;
    try {
      await bindQueue(lib, fd, queue);
    } catch (error) {
      lib.close(fd);
      throw error;
    }
    const reader = new NfqueueReader(lib, fd, queue, onPacket, onError);
    reader.#watcher = watchReadable(fd, (pollError) => reader.#drain(pollError));
    return reader;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one verdict. `mark` replaces the packet's whole mark. False when the
   * kernel did not take it (the reader is closed, or the socket refused): the
   * packet then stays queued until the queue goes, and is dropped with it.
   */
  verdict(id: number, verdict: QueueVerdict, mark?: number): boolean {
    if (this.#closed) return false;
    const message = encodeNfqueueVerdict(this.queue, id, verdict, mark);
    for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
      const sent = this.lib.send(this.fd, message, 0);
      if (sent.ok) return true;
      if (sent.errnoName === 'EINTR' || sent.errnoName === 'EAGAIN' || sent.errnoName === 'ENOBUFS') continue;
      this.#report({ code: 'RW_INTERNAL', message: `NFQUEUE ${this.queue}: sending the verdict for packet ${id} failed: ${sent.errnoName}` });
      return false;
    }
    this.#report({ code: 'RW_INTERNAL', message: `NFQUEUE ${this.queue}: the kernel kept refusing the verdict for packet ${id}` });
    return false;
  }

  /** Stops reading and releases the queue; the kernel drops whatever still waits for a verdict. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // libuv must stop watching the fd before it is closed.
    this.#watcher?.close();
    this.#watcher = null;
    this.lib.close(this.fd);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  #drain(pollError: string | null): void {
    if (this.#closed) return;
    if (pollError !== null) {
      this.#report({ code: 'RW_INTERNAL', message: `NFQUEUE ${this.queue}: ${pollError}` });
      return;
    }
    for (let i = 0; i < DATAGRAMS_PER_WAKEUP && !this.#closed; i++) {
      const received = this.lib.recv(this.fd, this.#buffer, MSG_DONTWAIT | MSG_TRUNC);
      if (!received.ok) {
        if (received.errnoName === 'EAGAIN' || received.errnoName === 'EWOULDBLOCK') return;
        if (received.errnoName === 'EINTR') continue;
        if (received.errnoName === 'ENOBUFS') {
          this.#report({
            code: 'RW_NFQUEUE_LOST',
            message: `NFQUEUE ${this.queue}: the socket buffer overran; the kernel dropped queued packets (their senders retransmit)`,
          });
          continue;
        }
        this.#report({ code: 'RW_INTERNAL', message: `NFQUEUE ${this.queue}: recv failed: ${received.errnoName}` });
        return;
      }
      if (received.value > this.#buffer.byteLength) {
        this.#report({ code: 'RW_NFQUEUE_MALFORMED', message: `NFQUEUE ${this.queue}: a ${received.value}-byte datagram was truncated; dropped` });
        continue;
      }
      const decoded = decodeNfqueueMessages(this.#buffer.subarray(0, received.value));
      for (const packet of decoded.packets) this.#deliver(packet);
      for (const error of decoded.errors) this.#report({ code: error.code, message: error.message, ...(error.id !== undefined ? { id: error.id } : {}) });
    }
  }

  #deliver(packet: QueuedPacket): void {
    try {
      this.onPacket(packet);
    } catch (error) {
      this.#report({ code: 'RW_INTERNAL', message: `NFQUEUE ${this.queue}: the packet handler threw: ${String(error)}`, id: packet.id });
    }
  }

  #report(error: NfqueueReaderError): void {
    try {
      this.onError(error);
    } catch {
      // An error handler that throws has nowhere further to report to; keep reading.
    }
  }
}

async function bindQueue(lib: Libc, fd: number, queue: number): Promise<void> {
  const size = int32(RECEIVE_BUFFER_BYTES);
  if (!lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size).ok) lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size);
  // struct sockaddr_nl { u16 family; u16 pad; u32 portid (0: kernel assigns); u32 groups; }
  const address = new Uint8Array(12);
  new DataView(address.buffer).setUint16(0, AF_NETLINK, true);
  const bound = lib.bind(fd, address);
  if (!bound.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot bind a netfilter netlink socket: ${bound.errnoName}`, { queue });

  const sequence = 1;
  const sent = lib.send(fd, encodeNfqueueBind(queue, sequence, { copyRange: COPY_RANGE, maxLength: QUEUE_MAX_LENGTH }), 0);
  if (!sent.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot send the NFQUEUE bind request for queue ${queue}: ${sent.errnoName}`, { queue });

  const status = await awaitAck(lib, fd, sequence);
  if (status === null) throw new RunwallError('RW_SETUP_FAILED', `the kernel did not acknowledge binding NFQUEUE ${queue} within ${ACK_WAIT_MS} ms`, { queue });
  if (status === 0) return;
  const name = errnoName(-status);
  if (name === 'EBUSY' || name === 'EPERM') {
    throw new RunwallError(
      'RW_SETUP_FAILED',
      `NFQUEUE ${queue} is held by another reader (${name}): another runwall run or a stale reader bound it in this network namespace`,
      { queue, errno: name },
    );
  }
  throw new RunwallError('RW_SETUP_FAILED', `binding NFQUEUE ${queue} failed: ${name}`, { queue, errno: name });
}

/** The kernel answers a config request synchronously, so the ack is normally already queued; wait a bounded time anyway. */
async function awaitAck(lib: Libc, fd: number, sequence: number): Promise<number | null> {
  const buffer = new Uint8Array(8192);
  const deadline = Date.now() + ACK_WAIT_MS;
  while (Date.now() < deadline) {
    const received = lib.recv(fd, buffer, MSG_DONTWAIT);
    if (received.ok) {
      const status = findNetlinkAck(buffer.subarray(0, Math.min(received.value, buffer.byteLength)), sequence);
      if (status !== null) return status;
      continue;
    }
    if (received.errnoName !== 'EAGAIN' && received.errnoName !== 'EWOULDBLOCK' && received.errnoName !== 'EINTR') {
      throw new RunwallError('RW_SETUP_FAILED', `reading the NFQUEUE bind acknowledgement failed: ${received.errnoName}`);
    }
    await sleep(ACK_POLL_MS);
  }
  return null;
}

function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, true);
  return bytes;
}
