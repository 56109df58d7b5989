/**
 * nftables set elements added and deleted over a NETLINK_NETFILTER socket of
 * runwall's own, one atomic batch per call (nft-set-message.ts), without
 * libnftables' text parser: the DNS proxy pays this before it releases each
 * fresh answer.
 *
 * nfnetlink handles a batch inside the sender's send() call, so every answer
 * is queued on the socket when send() returns: they are read without waiting,
 * and one that is missing then is an error, not something to wait for.
 * Like a libnftables context, the socket works on the tables of the network
 * namespace of the thread that opened it.
 */
import { getSystemErrorMap } from 'node:util';
import { RunwallError } from '../../protocol/index.js';
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_NETFILTER,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
  libc,
  type Libc,
} from './ffi.js';
import {
  NFPROTO_INET,
  SetElementReplies,
  decodeNetlinkAcks,
  encodeSetElementBatch,
  type SetElementBatch,
  type SetElementOperation,
  type SetElementRefusal,
} from './nft-set-message.js';

/**
 * Answers are one small datagram each (capped ACKs, < 300 bytes). Kept small because
 * koffi copies the buffer on every recv (64 KiB cost ~2.5 µs more per read). A
 * kernel without NETLINK_CAP_ACK echoes a refused message whole: one that does not
 * fit is unreadable, and the batch then fails as unconfirmed (closed, less precise).
 */
const RECEIVE_BUFFER_BYTES = 4096;
/** Reads beyond one per message allowed per call: answers left over from a batch given up on earlier. */
const STALE_READS_MAX = 1024;
const SEND_ATTEMPTS = 8;
/** Refusals quoted in one error message; the rest are counted. */
const QUOTED_REFUSALS = 3;

const ERRNO = getSystemErrorMap();

function describeErrno(errno: number): string {
  const known = ERRNO.get(-errno);
  return known ? `${known[0]} (${known[1]})` : `errno ${errno}`;
}

function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, true);
  return bytes;
}

export class NftSetWriter {
  #fd: number;
  #sequence = 1;
  readonly #buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);

  private constructor(
    private readonly lib: Libc,
    fd: number,
  ) {
    this.#fd = fd;
  }

  /** RW_PLATFORM_MISSING when the kernel has no nfnetlink; RW_SETUP_FAILED when it refuses the socket. */
  static open(): NftSetWriter {
    const lib = libc();
    const created = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (!created.ok) {
      const missing = created.errnoName === 'EPROTONOSUPPORT' || created.errnoName === 'EAFNOSUPPORT';
      throw new RunwallError(missing ? 'RW_PLATFORM_MISSING' : 'RW_SETUP_FAILED', `cannot open a netfilter netlink socket: ${created.errnoName}`);
    }
    const fd = created.value;
    // Both are refinements of the error answers (which element, shorter answers); a kernel without them still works.
    lib.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, int32(1));
    lib.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int32(1));
    // struct sockaddr_nl { u16 family; u16 pad; u32 portid (0: the kernel assigns); u32 groups; }
    const address = new Uint8Array(12);
    new DataView(address.buffer).setUint16(0, AF_NETLINK, true);
    const bound = lib.bind(fd, address);
    if (!bound.ok) {
      lib.close(fd);
      throw new RunwallError('RW_SETUP_FAILED', `cannot bind a netfilter netlink socket: ${bound.errnoName}`);
    }
    return new NftSetWriter(lib, fd);
  }

  /**
   * Applies the operations to sets of `inet table` as one batch: all of it or
   * none. Returns once the kernel has acknowledged every message;
   * RW_NFT_FAILED naming the refused element and errno otherwise.
   */
  apply(table: string, operations: readonly SetElementOperation[]): void {
    if (this.#fd < 0) throw new RunwallError('RW_INTERNAL', 'nftables set writer: the socket was already closed');
    let batch: SetElementBatch;
    try {
      batch = encodeSetElementBatch({ family: NFPROTO_INET, table, operations, firstSequence: this.#sequence });
    } catch (cause) {
      throw new RunwallError('RW_NFT_FAILED', `cannot encode the set update for table inet ${table}: ${(cause as Error).message}`, { table }, { cause });
    }
    if (batch.messages.length === 0) return;
    this.#sequence = (batch.endSequence + 1) >>> 0;
    this.#send(table, batch.bytes);

    const replies = new SetElementReplies(batch);
    let lost = false;
    let unreadable: string | null = null;
    const readsMax = batch.messages.length + STALE_READS_MAX;
    for (let reads = 0; !replies.complete; reads++) {
      if (reads >= readsMax) break;
      const received = this.lib.recv(this.#fd, this.#buffer, MSG_DONTWAIT | MSG_TRUNC);
      if (!received.ok) {
        if (received.errnoName === 'EINTR') continue;
        if (received.errnoName === 'ENOBUFS') {
          lost = true; // the socket overflowed: some answers were dropped
          continue;
        }
        if (received.errnoName === 'EAGAIN' || received.errnoName === 'EWOULDBLOCK') break;
        throw new RunwallError('RW_NFT_FAILED', `cannot read the kernel's answer for table inet ${table}: ${received.errnoName}`, { table });
      }
      const length = Math.min(received.value, this.#buffer.byteLength);
      const { acks, error } = decodeNetlinkAcks(this.#buffer.subarray(0, length));
      if (error !== null) unreadable = error;
      replies.take(acks);
    }

    if (replies.refusals.length > 0) throw refusalError(table, replies.refusals);
    if (!replies.complete) {
      const missing = replies.unanswered.length;
      const why = lost ? 'the socket overflowed and dropped answers' : unreadable !== null ? `an answer could not be read: ${unreadable}` : 'no answer was queued';
      // Fail closed: an update the kernel did not confirm is not counted as done.
      throw new RunwallError('RW_NFT_FAILED', `the kernel did not confirm ${missing} of ${batch.messages.length} set updates for table inet ${table} (${why})`, { table });
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    this.lib.close(this.#fd);
    this.#fd = -1;
  }

  #send(table: string, bytes: Uint8Array): void {
    for (let attempt = 1; ; attempt++) {
      const sent = this.lib.send(this.#fd, bytes, 0);
      if (sent.ok) return;
      if (sent.errnoName === 'EINTR' && attempt < SEND_ATTEMPTS) continue;
      throw new RunwallError('RW_NFT_FAILED', `cannot send the set update for table inet ${table} to the kernel: ${sent.errnoName}`, { table, errno: sent.errnoName });
    }
  }
}

function describeRefusal(table: string, refusal: SetElementRefusal): string {
  const kernel = refusal.text ? `; the kernel says: ${refusal.text}` : '';
  const message = refusal.message;
  if (message === null) return `the kernel refused the batch for table inet ${table}: ${describeErrno(refusal.errno)}${kernel}`;
  const verb = message.kind === 'add' ? 'add' : 'delete';
  const preposition = message.kind === 'add' ? 'to' : 'from';
  const what =
    refusal.element !== null
      ? refusal.element.label
      : message.elements.length === 1
        ? (message.elements[0]?.label ?? '')
        : `{ ${message.elements.map((e) => e.label).join(', ')} }`;
  return `nftables refused to ${verb} ${what} ${preposition} set ${message.set} of table inet ${table}: ${describeErrno(refusal.errno)}${kernel}`;
}

function refusalError(table: string, refusals: readonly SetElementRefusal[]): RunwallError {
  const quoted = refusals.slice(0, QUOTED_REFUSALS).map((r) => describeRefusal(table, r));
  const more = refusals.length > QUOTED_REFUSALS ? `; and ${refusals.length - QUOTED_REFUSALS} more` : '';
  const first = refusals[0];
  return new RunwallError('RW_NFT_FAILED', `${quoted.join('; ')}${more}`, {
    table,
    set: first?.message?.set ?? null,
    element: first?.element?.label ?? null,
    errno: first ? (ERRNO.get(-first.errno)?.[0] ?? first.errno) : null,
    kernelText: first?.text ?? null,
  });
}
