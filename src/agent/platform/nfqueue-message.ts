/**
 * Pure decoding of nfnetlink_queue (NFQUEUE) packet messages, and encoding of
 * the requests the queue reader sends: bind/unbind a queue, and one verdict
 * (with a new packet mark). No I/O: the socket lives in nfqueue.ts.
 *
 * Layout (include/uapi/linux/netfilter/nfnetlink_queue.h):
 *   nlmsghdr   u32 len, u16 type, u16 flags, u32 seq, u32 portid   (host byte order)
 *   nfgenmsg   u8 family, u8 version, be16 res_id (= the queue number)
 *   nlattr*    u16 len, u16 type (host order), payload padded to 4 bytes; payloads big-endian
 * A queued packet's payload starts at its IP header.
 */
import { encodeNfnetlinkMessage, formatIpv6, IPPROTO, NLM_F_ACK, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HEADER_LENGTH, NLMSG_NOOP } from './nflog-message.js';

const NFNL_SUBSYS_QUEUE = 3;
export const NFQNL_MSG_PACKET = (NFNL_SUBSYS_QUEUE << 8) | 0;
export const NFQNL_MSG_VERDICT = (NFNL_SUBSYS_QUEUE << 8) | 1;
export const NFQNL_MSG_CONFIG = (NFNL_SUBSYS_QUEUE << 8) | 2;
const NFGENMSG_LENGTH = 4;
const NLA_TYPE_MASK = 0x3fff; // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

export const NFQA = {
  PACKET_HDR: 1,
  VERDICT_HDR: 2,
  MARK: 3,
  TIMESTAMP: 4,
  IFINDEX_INDEV: 5,
  IFINDEX_OUTDEV: 6,
  PAYLOAD: 10,
  CAP_LEN: 13,
} as const;

const NFQA_CFG_CMD = 1;
const NFQA_CFG_PARAMS = 2;
const NFQA_CFG_QUEUE_MAXLEN = 3;
const NFQA_CFG_MASK = 4;
const NFQA_CFG_FLAGS = 5;
const NFQNL_CFG_CMD_BIND = 1;
const NFQNL_CFG_CMD_UNBIND = 2;
const NFQNL_COPY_PACKET = 2;
/** The reader takes GSO packets whole: the kernel need not segment them first. */
export const NFQA_CFG_F_GSO = 0x4;

/** Netfilter verdicts (include/uapi/linux/netfilter.h). */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;
/** Runs the packet through the same hook (the same iptables table) again, with the mark the verdict set. */
export const NF_REPEAT = 4;
export type QueueVerdict = typeof NF_DROP | typeof NF_ACCEPT | typeof NF_REPEAT;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const TCP_FLAG = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10 } as const;

export interface QueuedTcp {
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly sequence: number;
  readonly syn: boolean;
  readonly ack: boolean;
  readonly fin: boolean;
  readonly rst: boolean;
  /** The segment's data as far as the kernel copied it (a copy, safe to keep). */
  readonly payload: Uint8Array;
}

export interface QueuedPacket {
  readonly queue: number;
  /** The kernel's id for this packet: the verdict names it. */
  readonly id: number;
  readonly hook: number;
  /** The packet's mark when it was queued (0 when the kernel sent none). */
  readonly mark: number;
  readonly family: 4 | 6;
  readonly protocolNumber: number;
  readonly source: string;
  readonly destination: string;
  /** Present for TCP whose header was copied whole. */
  readonly tcp?: QueuedTcp;
  /** The packet's full length when the kernel copied less of it. */
  readonly originalLength?: number;
}

export interface NfqueueDecodeError {
  readonly code: 'RW_NFQUEUE_MALFORMED';
  readonly message: string;
  /** Set when the message named its packet: it still needs a verdict. */
  readonly id?: number;
  readonly queue?: number;
}

export interface NfqueueDecoded {
  readonly packets: QueuedPacket[];
  readonly errors: NfqueueDecodeError[];
}

class Malformed extends Error {
  constructor(
    message: string,
    readonly id?: number,
    readonly queue?: number,
  ) {
    super(message);
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Decodes one netlink datagram, which may hold several queued packets. Pure
 * and total: bad input becomes entries in `errors` (with the packet id when it
 * could be read, so the caller can still give that packet a verdict), never an
 * exception.
 */
export function decodeNfqueueMessages(datagram: Uint8Array): NfqueueDecoded {
  const packets: QueuedPacket[] = [];
  const errors: NfqueueDecodeError[] = [];
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  let offset = 0;
  // Every iteration advances by at least one aligned header, so this ends.
  while (offset < datagram.byteLength) {
    const remaining = datagram.byteLength - offset;
    if (remaining < NLMSG_HEADER_LENGTH) {
      errors.push(malformed(`${remaining} trailing bytes are shorter than a netlink header`));
      break;
    }
    const length = view.getUint32(offset, HOST_LITTLE_ENDIAN);
    const type = view.getUint16(offset + 4, HOST_LITTLE_ENDIAN);
    if (length < NLMSG_HEADER_LENGTH || length > remaining) {
      errors.push(malformed(`netlink message at byte ${offset} claims length ${length}, ${remaining} bytes remain`));
      break;
    }
    const message = new DataView(datagram.buffer, datagram.byteOffset + offset, length);
    try {
      if (type === NFQNL_MSG_PACKET) {
        packets.push(decodePacketMessage(message));
      } else if (type === NLMSG_ERROR) {
        const status = length >= NLMSG_HEADER_LENGTH + 4 ? message.getInt32(NLMSG_HEADER_LENGTH, HOST_LITTLE_ENDIAN) : 0;
        if (status !== 0) errors.push(malformed(`netlink error ${status} in the queue stream (a verdict for a packet the kernel no longer holds)`));
      } else if (type !== NLMSG_NOOP && type !== NLMSG_DONE) {
        errors.push(malformed(`unexpected netlink message type 0x${type.toString(16)}`));
      }
    } catch (error) {
      if (error instanceof Malformed) errors.push(malformed(error.message, error.id, error.queue));
      else errors.push(malformed(`decoder failure: ${String(error)}`));
    }
    offset += align4(length);
  }
  return { packets, errors };
}

function decodePacketMessage(message: DataView): QueuedPacket {
  if (message.byteLength < NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH) throw new Malformed('NFQUEUE message shorter than its nfgenmsg header');
  const queue = message.getUint16(NLMSG_HEADER_LENGTH + 2, false);
  const attributes = readAttributes(message, NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH, queue);
  const header = attributes.get(NFQA.PACKET_HDR);
  // struct nfqnl_msg_packet_hdr { be32 packet_id; be16 hw_protocol; u8 hook; } (packed)
  if (!header || header.byteLength < 7) throw new Malformed(`NFQUEUE packet of queue ${queue} has no packet header`, undefined, queue);
  const id = header.getUint32(0, false);
  const hook = header.getUint8(6);
  try {
    const markValue = attributes.get(NFQA.MARK);
    if (markValue && markValue.byteLength !== 4) throw new Malformed(`mark attribute is ${markValue.byteLength} bytes, expected 4`);
    const mark = markValue ? markValue.getUint32(0, false) : 0;
    const payload = attributes.get(NFQA.PAYLOAD);
    if (!payload) throw new Malformed('no payload (copy mode must be "packet")');
    const capLength = attributes.get(NFQA.CAP_LEN);
    if (capLength && capLength.byteLength !== 4) throw new Malformed(`cap-len attribute is ${capLength.byteLength} bytes, expected 4`);
    const ip = decodeIpPacket(payload);
    return Object.freeze({
      queue,
      id,
      hook,
      mark,
      ...ip,
      ...(capLength ? { originalLength: capLength.getUint32(0, false) } : {}),
    });
  } catch (error) {
    if (error instanceof Malformed) throw new Malformed(`NFQUEUE packet ${id} of queue ${queue}: ${error.message}`, id, queue);
    throw error;
  }
}

/** The attributes of one message; a later duplicate wins, as in the kernel's nla_parse. */
function readAttributes(message: DataView, start: number, queue: number): Map<number, DataView> {
  const attributes = new Map<number, DataView>();
  let offset = start;
  while (offset < message.byteLength) {
    if (message.byteLength - offset < 4) throw new Malformed(`${message.byteLength - offset} trailing bytes in an NFQUEUE message`, undefined, queue);
    const length = message.getUint16(offset, HOST_LITTLE_ENDIAN);
    const type = message.getUint16(offset + 2, HOST_LITTLE_ENDIAN) & NLA_TYPE_MASK;
    if (length < 4 || length > message.byteLength - offset) {
      throw new Malformed(`NFQUEUE attribute ${type} claims length ${length}, ${message.byteLength - offset} bytes remain`, undefined, queue);
    }
    attributes.set(type, new DataView(message.buffer, message.byteOffset + offset + 4, length - 4));
    offset += align4(length);
  }
  return attributes;
}

type IpPart = Pick<QueuedPacket, 'family' | 'protocolNumber' | 'source' | 'destination' | 'tcp'>;

const IPV6_EXTENSIONS = new Set([0, 43, 44, 51, 60]);
const IPV6_EXTENSION_HEADERS_MAX = 8;

function decodeIpPacket(payload: DataView): IpPart {
  if (payload.byteLength < 1) throw new Malformed('payload is empty');
  const version = payload.getUint8(0) >> 4;
  if (version === 4) {
    if (payload.byteLength < 20) throw new Malformed(`IPv4 header truncated to ${payload.byteLength} bytes`);
    const headerLength = (payload.getUint8(0) & 0x0f) * 4;
    if (headerLength < 20 || headerLength > payload.byteLength) throw new Malformed(`IPv4 header length ${headerLength} does not fit ${payload.byteLength} bytes`);
    const totalLength = payload.getUint16(2, false);
    const protocolNumber = payload.getUint8(9);
    const fragmentOffset = payload.getUint16(6, false) & 0x1fff;
    const source = formatIpv4(payload, 12);
    const destination = formatIpv4(payload, 16);
    // A GSO packet may say 0 here; otherwise the IP length bounds the segment (Ethernet padding is not data).
    const end = totalLength >= headerLength && totalLength <= payload.byteLength ? totalLength : payload.byteLength;
    const tcp = protocolNumber === IPPROTO.TCP && fragmentOffset === 0 ? decodeTcp(payload, headerLength, end) : undefined;
    return { family: 4, protocolNumber, source, destination, ...(tcp ? { tcp } : {}) };
  }
  if (version === 6) {
    if (payload.byteLength < 40) throw new Malformed(`IPv6 header truncated to ${payload.byteLength} bytes`);
    const source = formatIpv6(payload, 8);
    const destination = formatIpv6(payload, 24);
    const payloadLength = payload.getUint16(4, false);
    const end = payloadLength > 0 && 40 + payloadLength <= payload.byteLength ? 40 + payloadLength : payload.byteLength;
    let next = payload.getUint8(6);
    let offset = 40;
    let reachable = true;
    for (let hops = 0; hops < IPV6_EXTENSION_HEADERS_MAX && IPV6_EXTENSIONS.has(next); hops++) {
      if (end - offset < 8) {
        reachable = false;
        break;
      }
      const header = next;
      next = payload.getUint8(offset);
      if (header === 44) {
        if ((payload.getUint16(offset + 2, false) & 0xfff8) !== 0) reachable = false; // not the first fragment
        offset += 8;
      } else if (header === 51) {
        offset += (payload.getUint8(offset + 1) + 2) * 4;
      } else {
        offset += (payload.getUint8(offset + 1) + 1) * 8;
      }
      if (!reachable) break;
    }
    const tcp = reachable && next === IPPROTO.TCP && offset <= end ? decodeTcp(payload, offset, end) : undefined;
    return { family: 6, protocolNumber: next, source, destination, ...(tcp ? { tcp } : {}) };
  }
  throw new Malformed(`payload has IP version ${version}`);
}

function decodeTcp(packet: DataView, start: number, end: number): QueuedTcp | undefined {
  if (end - start < 20) return undefined;
  const dataOffset = (packet.getUint8(start + 12) >> 4) * 4;
  if (dataOffset < 20 || start + dataOffset > end) throw new Malformed(`TCP data offset ${dataOffset} does not fit the segment`);
  const flags = packet.getUint8(start + 13);
  const bytes = new Uint8Array(packet.buffer, packet.byteOffset + start + dataOffset, end - start - dataOffset);
  return Object.freeze({
    sourcePort: packet.getUint16(start, false),
    destinationPort: packet.getUint16(start + 2, false),
    sequence: packet.getUint32(start + 4, false),
    syn: (flags & TCP_FLAG.syn) !== 0,
    ack: (flags & TCP_FLAG.ack) !== 0,
    fin: (flags & TCP_FLAG.fin) !== 0,
    rst: (flags & TCP_FLAG.rst) !== 0,
    payload: bytes.slice(), // the receive buffer is reused for the next datagram
  });
}

function formatIpv4(view: DataView, offset: number): string {
  return `${view.getUint8(offset)}.${view.getUint8(offset + 1)}.${view.getUint8(offset + 2)}.${view.getUint8(offset + 3)}`;
}

function malformed(message: string, id?: number, queue?: number): NfqueueDecodeError {
  return Object.freeze({ code: 'RW_NFQUEUE_MALFORMED', message, ...(id !== undefined ? { id } : {}), ...(queue !== undefined ? { queue } : {}) });
}

function be32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, false);
  return bytes;
}

function checkQueue(queue: number): void {
  if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) throw new RangeError(`queue ${queue} is not an integer in 0-65535`);
}

export interface QueueBindOptions {
  /** Bytes of each packet copied to the reader, from the IP header on. */
  readonly copyRange: number;
  /** Packets the kernel holds waiting for a verdict; beyond it new ones are dropped (no bypass). */
  readonly maxLength: number;
}

/** Binds `queue` to the sending socket, copying packets whole (up to copyRange) and taking GSO packets as they are. */
export function encodeNfqueueBind(queue: number, sequence: number, options: QueueBindOptions): Uint8Array {
  checkQueue(queue);
  const command = new Uint8Array(4); // struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
  command[0] = NFQNL_CFG_CMD_BIND;
  const params = new Uint8Array(5); // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
  new DataView(params.buffer).setUint32(0, options.copyRange, false);
  params[4] = NFQNL_COPY_PACKET;
  return encodeNfnetlinkMessage({
    type: NFQNL_MSG_CONFIG,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    sequence,
    family: 0,
    resourceId: queue,
    attributes: [
      { type: NFQA_CFG_CMD, payload: command },
      { type: NFQA_CFG_PARAMS, payload: params },
      { type: NFQA_CFG_QUEUE_MAXLEN, payload: be32(options.maxLength) },
      { type: NFQA_CFG_MASK, payload: be32(NFQA_CFG_F_GSO) },
      { type: NFQA_CFG_FLAGS, payload: be32(NFQA_CFG_F_GSO) },
    ],
  });
}

export function encodeNfqueueUnbind(queue: number, sequence: number): Uint8Array {
  checkQueue(queue);
  const command = new Uint8Array(4);
  command[0] = NFQNL_CFG_CMD_UNBIND;
  return encodeNfnetlinkMessage({
    type: NFQNL_MSG_CONFIG,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    sequence,
    family: 0,
    resourceId: queue,
    attributes: [{ type: NFQA_CFG_CMD, payload: command }],
  });
}

/** One verdict; with `mark` the packet leaves with that mark (the kernel replaces the whole 32-bit value). */
export function encodeNfqueueVerdict(queue: number, id: number, verdict: QueueVerdict, mark?: number): Uint8Array {
  checkQueue(queue);
  const header = new Uint8Array(8); // struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }
  const view = new DataView(header.buffer);
  view.setUint32(0, verdict, false);
  view.setUint32(4, id >>> 0, false);
  return encodeNfnetlinkMessage({
    type: NFQNL_MSG_VERDICT,
    flags: NLM_F_REQUEST,
    sequence: 0,
    family: 0,
    resourceId: queue,
    attributes: [{ type: NFQA.VERDICT_HDR, payload: header }, ...(mark !== undefined ? [{ type: NFQA.MARK, payload: be32(mark) }] : [])],
  });
}
