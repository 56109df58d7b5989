/**
 * NFLOG reader: a raw NETLINK_NETFILTER socket bound to one log group
 * (`nft ... log group N`), read from the Node event loop through a libuv poll
 * watcher. Nothing blocks while waiting, so no libuv pool thread is held and
 * close() is immediate. Decoding is nflog-message.ts (pure).
 *
 * The socket belongs to the network namespace of the thread that opens it. An
 * open reader keeps the process alive, as a listening socket does, until close().
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
import { decodeNflogMessages, encodeNflogBindRequest, findNetlinkAck, type NflogPacket } from './nflog-message.js';

export interface NflogReaderError {
  readonly code: Extract<ErrorCode, 'RW_NFLOG_MALFORMED' | 'RW_NFLOG_LOST' | 'RW_INTERNAL'>;
  readonly message: string;
}

/** Bytes of each packet copied from its IP header on: room for IPv6 extension headers and the transport header. */
const COPY_RANGE = 512;
/** Socket receive buffer: a burst of blocked connection attempts must not overrun it. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
const DATAGRAM_BUFFER_BYTES = 64 * 1024;
/** Datagrams read per readiness callback, so a flood cannot starve the event loop (poll is level-triggered). */
const DATAGRAMS_PER_WAKEUP = 64;
/** Datagrams read at close at most: a full receive buffer of the smallest ones. */
const DATAGRAMS_AT_CLOSE = RECEIVE_BUFFER_BYTES / 64;
const ACK_WAIT_MS = 1000;
const ACK_POLL_MS = 5;

export class NflogReader {
  private closed = false;
  private readonly buffer = new Uint8Array(DATAGRAM_BUFFER_BYTES);
  private watcher: FdWatcher | null = null;

  private constructor(
    private readonly lib: Libc,
    private readonly fd: number,
    readonly group: number,
    private readonly onPacket: (packet: NflogPacket) => void,
    private readonly onError: (error: NflogReaderError) => void,
  ) {}

  /**
   * Binds NFLOG `group` (0-65535) in the current network namespace.
   * RW_PLATFORM_MISSING without nfnetlink; RW_SETUP_FAILED otherwise, with
   * EPERM explained: another listener holds the group.
   */
  static async open(
    group: number,
    onPacket: (packet: NflogPacket) => void,
    onError: (error: NflogReaderError) => void,
  ): Promise<NflogReader> {
    if (!Number.isInteger(group) || group < 0 || group > 0xffff) {
      throw new RunwallError('RW_SETUP_FAILED', `NFLOG group ${group} is not an integer in 0-65535`);
    }
    const lib = libc();
    const socket = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (!socket.ok) {
      const missing = socket.errnoName === 'EPROTONOSUPPORT' || socket.errnoName === 'EAFNOSUPPORT';
      throw new RunwallError(
        missing ? 'RW_PLATFORM_MISSING' : 'RW_SETUP_FAILED',
        missing
          ? `the kernel has no nfnetlink (NETLINK_NETFILTER socket: ${socket.errnoName})`
          : `cannot open a netfilter netlink socket: ${socket.errnoName}`,
        { group },
      );
    }
    const fd = socket.value;
    try {
      await bindGroup(lib, fd, group);
    } catch (error) {
      lib.close(fd);
      throw error;
    }
    const reader = new NflogReader(lib, fd, group, onPacket, onError);
    reader.watcher = watchReadable(fd, (pollError) => reader.drain(pollError));
    return reader;
  }

  /**
   * Reads what the kernel has already queued (it logs each packet as it passes, so a job's
   * last blocked attempts are there once the job is gone), then stops reading and releases
   * the group. Immediate: nothing is blocked in a read.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.drain(null, DATAGRAMS_AT_CLOSE);
    this.closed = true;
    // libuv must stop watching the fd before it is closed.
    this.watcher?.close();
    this.watcher = null;
    this.lib.close(this.fd);
    // Let libuv finish closing its handle before the caller moves on.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private drain(pollError: string | null, limit = DATAGRAMS_PER_WAKEUP): void {
    if (this.closed) return;
    if (pollError !== null) {
      this.report({ code: 'RW_INTERNAL', message: `NFLOG group ${this.group}: ${pollError}` });
      return;
    }
    for (let i = 0; i < limit && !this.closed; i++) {
      const received = this.lib.recv(this.fd, this.buffer, MSG_DONTWAIT | MSG_TRUNC);
      if (!received.ok) {
        if (received.errnoName === 'EAGAIN' || received.errnoName === 'EWOULDBLOCK') return;
        if (received.errnoName === 'EINTR') continue;
        if (received.errnoName === 'ENOBUFS') {
          this.report({ code: 'RW_NFLOG_LOST', message: `NFLOG group ${this.group}: the socket buffer overran; some blocked packets were not logged` });
          continue;
        }
        this.report({ code: 'RW_INTERNAL', message: `NFLOG group ${this.group}: recv failed: ${received.errnoName}` });
        return;
      }
      if (received.value > this.buffer.byteLength) {
        this.report({ code: 'RW_NFLOG_MALFORMED', message: `NFLOG group ${this.group}: a ${received.value}-byte datagram was truncated; dropped` });
        continue;
      }
      const decoded = decodeNflogMessages(this.buffer.subarray(0, received.value), new Date());
      for (const packet of decoded.packets) this.deliver(packet);
      for (const error of decoded.errors) this.report(error);
    }
  }

  private deliver(packet: NflogPacket): void {
    try {
      this.onPacket(packet);
    } catch (error) {
      this.report({ code: 'RW_INTERNAL', message: `NFLOG group ${this.group}: the packet handler threw: ${String(error)}` });
    }
  }

  private report(error: NflogReaderError): void {
    try {
      this.onError(error);
    } catch {
      // An error handler that throws has nowhere further to report to; keep reading.
    }
  }
}

async function bindGroup(lib: Libc, fd: number, group: number): Promise<void> {
  const force = lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, int32(RECEIVE_BUFFER_BYTES));
  if (!force.ok) lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int32(RECEIVE_BUFFER_BYTES)); // capped by rmem_max, still better than the default

  // struct sockaddr_nl { u16 family; u16 pad; u32 portid (0: kernel assigns); u32 groups; }
  const address = new Uint8Array(12);
  new DataView(address.buffer).setUint16(0, AF_NETLINK, true);
  const bound = lib.bind(fd, address);
  if (!bound.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot bind a netfilter netlink socket: ${bound.errnoName}`, { group });

  const sequence = 1;
  const sent = lib.send(fd, encodeNflogBindRequest(group, sequence, COPY_RANGE), 0);
  if (!sent.ok) throw new RunwallError('RW_SETUP_FAILED', `cannot send the NFLOG bind request for group ${group}: ${sent.errnoName}`, { group });

  const status = await awaitAck(lib, fd, sequence);
  if (status === null) throw new RunwallError('RW_SETUP_FAILED', `the kernel did not acknowledge binding NFLOG group ${group} within ${ACK_WAIT_MS} ms`, { group });
  if (status === 0) return;
  const name = errnoName(-status);
  if (name === 'EPERM') {
    throw new RunwallError(
      'RW_SETUP_FAILED',
      `NFLOG group ${group} is held by another listener (EPERM): another runwall agent, ulogd or a stale reader already bound it in this network namespace; stop it or use another group (without CAP_NET_ADMIN the kernel says EPERM too)`,
      { group, errno: name },
    );
  }
  throw new RunwallError('RW_SETUP_FAILED', `binding NFLOG group ${group} failed: ${name}`, { group, errno: name });
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
      continue; // a log message that arrived before the ack: the reader has not started, so it is not ours to keep
    }
    if (received.errnoName !== 'EAGAIN' && received.errnoName !== 'EWOULDBLOCK' && received.errnoName !== 'EINTR') {
      throw new RunwallError('RW_SETUP_FAILED', `reading the NFLOG bind acknowledgement failed: ${received.errnoName}`);
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
