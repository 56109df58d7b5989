/**
 * Pure decoding of nfnetlink_log (NFLOG) datagrams, and encoding of the few
 * configuration requests the reader sends. No I/O: the socket lives in nflog.ts.
 *
 * Layout (include/uapi/linux/netlink.h, netfilter/nfnetlink_log.h):
 *   nlmsghdr   u32 len, u16 type, u16 flags, u32 seq, u32 portid   (host byte order)
 *   nfgenmsg   u8 family, u8 version, be16 res_id (= the NFLOG group)
 *   nlattr*    u16 len, u16 type (host order), payload padded to 4 bytes
 * Attribute payloads are big-endian.
 */

export type NflogProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | 'other';

export interface NflogPacket {
  readonly group: number;
  readonly prefix: string;
  readonly family: 4 | 6;
  readonly protocol: NflogProtocol;
  readonly protocolNumber: number;
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number | null;
  readonly destinationPort: number | null;
  readonly tcpFlags?: { readonly syn: boolean; readonly ack: boolean; readonly rst: boolean; readonly fin: boolean };
  readonly icmpType?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mark?: number;
  readonly inInterface?: number;
  readonly outInterface?: number;
  readonly time: Date;
}

export interface NflogDecodeError {
  readonly code: 'RW_NFLOG_MALFORMED';
  readonly message: string;
}

export interface NflogDecoded {
  packets: NflogPacket[];
  errors: NflogDecodeError[];
}

// Netlink and nfnetlink_log numbers.
export const NLMSG_HEADER_LENGTH = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
const NFNL_SUBSYS_ULOG = 4;
export const NFULNL_MSG_PACKET = (NFNL_SUBSYS_ULOG << 8) | 0;
export const NFULNL_MSG_CONFIG = (NFNL_SUBSYS_ULOG << 8) | 1;
const NFGENMSG_LENGTH = 4;
const NLA_TYPE_MASK = 0x3fff; // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

export const NFULA = {
  PACKET_HDR: 1,
  MARK: 2,
  TIMESTAMP: 3,
  IFINDEX_INDEV: 4,
  IFINDEX_OUTDEV: 5,
  PAYLOAD: 9,
  PREFIX: 10,
  UID: 11,
  GID: 14,
} as const;

const NFULA_CFG_CMD = 1;
const NFULA_CFG_MODE = 2;
const NFULA_CFG_TIMEOUT = 4;
const NFULA_CFG_QTHRESH = 5;
const NFULNL_CFG_CMD_BIND = 1;
const NFULNL_COPY_PACKET = 2;

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;
const PROTOCOL_NAMES = new Map<number, NflogProtocol>([
  [IPPROTO.ICMP, 'icmp'],
  [IPPROTO.TCP, 'tcp'],
  [IPPROTO.UDP, 'udp'],
  [IPPROTO.ICMPV6, 'icmpv6'],
  [IPPROTO.SCTP, 'sctp'],
]);
/** IPv6 extension headers walked to reach the transport header. */
const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_AUTH = 51;
const IPV6_DEST_OPTS = 60;
const IPV6_EXTENSION_HEADERS_MAX = 8;

/** Netlink integers are in host byte order; runwall's targets (x86_64, arm64) are little-endian, but say so in one place. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** The largest time a Date can hold, in ms. */
const DATE_MAX_MS = 8.64e15;

const utf8 = new TextDecoder('utf-8');

class Malformed extends Error {}

export function protocolName(protocolNumber: number): NflogProtocol {
  return PROTOCOL_NAMES.get(protocolNumber) ?? 'other';
}

/**
 * Decodes one netlink datagram, which may hold several NFLOG messages. Pure and
 * total: bad input becomes entries in `errors`, never an exception. Packets the
 * kernel did not timestamp (locally generated ones usually) get `receivedAt`.
 */
export function decodeNflogMessages(buffer: Uint8Array, receivedAt: Date = new Date()): NflogDecoded {
  const packets: NflogPacket[] = [];
  const errors: NflogDecodeError[] = [];
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let offset = 0;
  // Every iteration advances by at least one aligned header, so this ends.
  while (offset < buffer.byteLength) {
    if (buffer.byteLength - offset < NLMSG_HEADER_LENGTH) {
      errors.push(malformed(`${buffer.byteLength - offset} trailing bytes are shorter than a netlink header`));
      break;
    }
    const length = view.getUint32(offset, HOST_LITTLE_ENDIAN);
    const type = view.getUint16(offset + 4, HOST_LITTLE_ENDIAN);
    if (length < NLMSG_HEADER_LENGTH || length > buffer.byteLength - offset) {
      errors.push(malformed(`netlink message at byte ${offset} claims length ${length}, ${buffer.byteLength - offset} bytes remain`));
      break;
    }
    const message = new DataView(buffer.buffer, buffer.byteOffset + offset, length);
    try {
      if (type === NFULNL_MSG_PACKET) {
        packets.push(decodePacketMessage(message, receivedAt));
      } else if (type === NLMSG_ERROR) {
        const status = length >= NLMSG_HEADER_LENGTH + 4 ? message.getInt32(NLMSG_HEADER_LENGTH, HOST_LITTLE_ENDIAN) : 0;
        if (status !== 0) errors.push(malformed(`netlink error ${status} in the log stream`));
      } else if (type !== NLMSG_NOOP && type !== NLMSG_DONE) {
        errors.push(malformed(`unexpected netlink message type 0x${type.toString(16)}`));
      }
    } catch (error) {
      errors.push(malformed(error instanceof Malformed ? error.message : `decoder failure: ${String(error)}`));
    }
    offset += align4(length);
  }
  return { packets, errors };
}

function decodePacketMessage(message: DataView, receivedAt: Date): NflogPacket {
  if (message.byteLength < NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH) throw new Malformed('NFLOG message shorter than its nfgenmsg header');
  const group = message.getUint16(NLMSG_HEADER_LENGTH + 2, false);
  const attributes = readAttributes(message, NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH);

  const payload = attributes.get(NFULA.PAYLOAD);
  if (!payload) throw new Malformed(`NFLOG packet of group ${group} has no payload (copy mode must be "packet")`);
  const headers = decodeIpPacket(payload);

  const prefixBytes = attributes.get(NFULA.PREFIX);
  const prefix = prefixBytes ? decodeCString(prefixBytes) : '';
  const time = decodeTimestamp(attributes.get(NFULA.TIMESTAMP)) ?? receivedAt;

  const packet: Record<string, unknown> = { group, prefix, ...headers };
  setU32(packet, 'uid', attributes.get(NFULA.UID));
  setU32(packet, 'gid', attributes.get(NFULA.GID));
  setU32(packet, 'mark', attributes.get(NFULA.MARK));
  setU32(packet, 'inInterface', attributes.get(NFULA.IFINDEX_INDEV));
  setU32(packet, 'outInterface', attributes.get(NFULA.IFINDEX_OUTDEV));
  packet.time = time;
  return Object.freeze(packet) as unknown as NflogPacket;
}

/** The attributes of one message; a later duplicate wins, as in the kernel's nla_parse. */
function readAttributes(message: DataView, start: number): Map<number, DataView> {
  const attributes = new Map<number, DataView>();
  let offset = start;
  while (offset < message.byteLength) {
    if (message.byteLength - offset < 4) throw new Malformed(`${message.byteLength - offset} trailing bytes in an NFLOG message`);
    const length = message.getUint16(offset, HOST_LITTLE_ENDIAN);
    const type = message.getUint16(offset + 2, HOST_LITTLE_ENDIAN) & NLA_TYPE_MASK;
    if (length < 4 || length > message.byteLength - offset) {
      throw new Malformed(`NFLOG attribute ${type} claims length ${length}, ${message.byteLength - offset} bytes remain`);
    }
    attributes.set(type, new DataView(message.buffer, message.byteOffset + offset + 4, length - 4));
    offset += align4(length);
  }
  return attributes;
}

function setU32(target: Record<string, unknown>, key: string, value: DataView | undefined): void {
  if (!value) return;
  if (value.byteLength !== 4) throw new Malformed(`NFLOG ${key} attribute is ${value.byteLength} bytes, expected 4`);
  target[key] = value.getUint32(0, false);
}

function decodeTimestamp(value: DataView | undefined): Date | null {
  if (!value) return null;
  if (value.byteLength !== 16) throw new Malformed(`NFLOG timestamp attribute is ${value.byteLength} bytes, expected 16`);
  const seconds = value.getUint32(0, false) * 2 ** 32 + value.getUint32(4, false);
  const micros = value.getUint32(8, false) * 2 ** 32 + value.getUint32(12, false);
  const ms = seconds * 1000 + Math.floor(micros / 1000);
  if (micros >= 1_000_000 || !(ms <= DATE_MAX_MS)) throw new Malformed(`NFLOG timestamp ${seconds}s ${micros}us is out of range`);
  return new Date(ms);
}

function decodeCString(value: DataView): string {
  const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const end = bytes.indexOf(0);
  return utf8.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

type IpHeaders = Pick<
  NflogPacket,
  'family' | 'protocol' | 'protocolNumber' | 'source' | 'destination' | 'sourcePort' | 'destinationPort' | 'tcpFlags' | 'icmpType'
>;

/** The network and transport headers of a logged packet (the payload starts at the IP header). */
function decodeIpPacket(payload: DataView): IpHeaders {
  if (payload.byteLength < 1) throw new Malformed('NFLOG payload is empty');
  const version = payload.getUint8(0) >> 4;
  if (version === 4) return decodeIpv4(payload);
  if (version === 6) return decodeIpv6(payload);
  throw new Malformed(`NFLOG payload has IP version ${version}`);
}

function decodeIpv4(payload: DataView): IpHeaders {
  if (payload.byteLength < 20) throw new Malformed(`IPv4 header truncated to ${payload.byteLength} bytes`);
  const headerLength = (payload.getUint8(0) & 0x0f) * 4;
  if (headerLength < 20) throw new Malformed(`IPv4 header length ${headerLength} is below 20`);
  const protocolNumber = payload.getUint8(9);
  const fragmentOffset = payload.getUint16(6, false) & 0x1fff;
  const source = formatIpv4(payload, 12);
  const destination = formatIpv4(payload, 16);
  // Only the first fragment carries the transport header.
  const transport = fragmentOffset === 0 && headerLength <= payload.byteLength ? slice(payload, headerLength) : null;
  return { family: 4, source, destination, ...decodeTransport(protocolNumber, transport) };
}

function decodeIpv6(payload: DataView): IpHeaders {
  if (payload.byteLength < 40) throw new Malformed(`IPv6 header truncated to ${payload.byteLength} bytes`);
  const source = formatIpv6(payload, 8);
  const destination = formatIpv6(payload, 24);
  let next = payload.getUint8(6);
  let offset = 40;
  let transportReachable = true;
  for (let hops = 0; hops < IPV6_EXTENSION_HEADERS_MAX; hops++) {
    if (![IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AUTH, IPV6_DEST_OPTS].includes(next)) break;
    if (payload.byteLength - offset < 8) {
      transportReachable = false;
      break;
    }
    const header = next;
    next = payload.getUint8(offset);
    if (header === IPV6_FRAGMENT) {
      if ((payload.getUint16(offset + 2, false) & 0xfff8) !== 0) transportReachable = false;
      offset += 8;
    } else if (header === IPV6_AUTH) {
      offset += (payload.getUint8(offset + 1) + 2) * 4;
    } else {
      offset += (payload.getUint8(offset + 1) + 1) * 8;
    }
    if (!transportReachable) break;
  }
  const transport = transportReachable && offset <= payload.byteLength ? slice(payload, offset) : null;
  return { family: 6, source, destination, ...decodeTransport(next, transport) };
}

type TransportHeaders = Pick<IpHeaders, 'protocol' | 'protocolNumber' | 'sourcePort' | 'destinationPort' | 'tcpFlags' | 'icmpType'>;

function decodeTransport(protocolNumber: number, transport: DataView | null): TransportHeaders {
  const protocol = protocolName(protocolNumber);
  const hasPorts = protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp';
  const portsReadable = hasPorts && transport !== null && transport.byteLength >= 4;
  const result: TransportHeaders = {
    protocol,
    protocolNumber,
    sourcePort: portsReadable ? transport.getUint16(0, false) : null,
    destinationPort: portsReadable ? transport.getUint16(2, false) : null,
  };
  if (protocol === 'tcp' && transport !== null && transport.byteLength >= 14) {
    const flags = transport.getUint8(13);
    return {
      ...result,
      tcpFlags: Object.freeze({ fin: (flags & 0x01) !== 0, syn: (flags & 0x02) !== 0, rst: (flags & 0x04) !== 0, ack: (flags & 0x10) !== 0 }),
    };
  }
  if ((protocol === 'icmp' || protocol === 'icmpv6') && transport !== null && transport.byteLength >= 1) {
    return { ...result, icmpType: transport.getUint8(0) };
  }
  return result;
}

function slice(view: DataView, from: number): DataView {
  return new DataView(view.buffer, view.byteOffset + from, view.byteLength - from);
}

function formatIpv4(view: DataView, offset: number): string {
  return [0, 1, 2, 3].map((i) => view.getUint8(offset + i)).join('.');
}

/**
 * RFC 5952 text, exactly as Node prints socket addresses (inet_ntop): the first
 * longest run of two or more zero groups becomes "::", and IPv4-mapped or
 * -compatible addresses end in dotted decimal.
 */
export function formatIpv6(view: DataView, offset: number): string {
  const words = Array.from({ length: 8 }, (_, i) => view.getUint16(offset + i * 2, false));
  let bestBase = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLength) {
      bestBase = i;
      bestLength = end - i;
    }
    i = end;
  }
  if (bestLength < 2) bestBase = -1;
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLength) {
      if (i === bestBase) text += ':';
      continue;
    }
    if (i !== 0) text += ':';
    const embedsIpv4 = i === 6 && bestBase === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff));
    if (embedsIpv4) return text + formatIpv4(view, offset + 12);
    text += (words[i] ?? 0).toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLength === 8) text += ':';
  return text;
}

function malformed(message: string): NflogDecodeError {
  return Object.freeze({ code: 'RW_NFLOG_MALFORMED', message });
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

// ---- Requests the reader sends (also pure) ----

export interface NetlinkMessageParts {
  readonly type: number;
  readonly flags: number;
  readonly sequence: number;
  readonly family: number;
  readonly resourceId: number;
  readonly attributes: readonly { readonly type: number; readonly payload: Uint8Array }[];
}

/** Encodes one nfnetlink message: nlmsghdr + nfgenmsg + attributes, each padded to 4 bytes. */
export function encodeNfnetlinkMessage(parts: NetlinkMessageParts): Uint8Array {
  const length = NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH + parts.attributes.reduce((sum, a) => sum + align4(4 + a.payload.byteLength), 0);
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, HOST_LITTLE_ENDIAN);
  view.setUint16(4, parts.type, HOST_LITTLE_ENDIAN);
  view.setUint16(6, parts.flags, HOST_LITTLE_ENDIAN);
  view.setUint32(8, parts.sequence, HOST_LITTLE_ENDIAN);
  view.setUint32(12, 0, HOST_LITTLE_ENDIAN); // portid 0: addressed to the kernel
  view.setUint8(16, parts.family);
  view.setUint8(17, 0); // NFNETLINK_V0
  view.setUint16(18, parts.resourceId, false);
  let offset = NLMSG_HEADER_LENGTH + NFGENMSG_LENGTH;
  for (const attribute of parts.attributes) {
    view.setUint16(offset, 4 + attribute.payload.byteLength, HOST_LITTLE_ENDIAN);
    view.setUint16(offset + 2, attribute.type, HOST_LITTLE_ENDIAN);
    bytes.set(attribute.payload, offset + 4);
    offset += align4(4 + attribute.payload.byteLength);
  }
  return bytes;
}

function be32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, false);
  return bytes;
}

/**
 * Binds `group` to the sending socket, asks for packet headers (`copyRange`
 * bytes from the IP header on) and a flush after every packet: by default the
 * kernel batches log messages for up to a second.
 */
export function encodeNflogBindRequest(group: number, sequence: number, copyRange: number): Uint8Array {
  const mode = new Uint8Array(6); // struct nfulnl_msg_config_mode { be32 copy_range; u8 copy_mode; u8 pad; }
  new DataView(mode.buffer).setUint32(0, copyRange, false);
  mode[4] = NFULNL_COPY_PACKET;
  return encodeNfnetlinkMessage({
    type: NFULNL_MSG_CONFIG,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    sequence,
    family: 0, // AF_UNSPEC: a group binds for every address family
    resourceId: group,
    attributes: [
      { type: NFULA_CFG_CMD, payload: Uint8Array.of(NFULNL_CFG_CMD_BIND) },
      { type: NFULA_CFG_MODE, payload: mode },
      { type: NFULA_CFG_QTHRESH, payload: be32(1) },
      { type: NFULA_CFG_TIMEOUT, payload: be32(1) }, // 1/100 s
    ],
  });
}

/**
 * The status of the netlink acknowledgement for `sequence` in `datagram`:
 * 0 for success, a negative errno for refusal, null when it is not there.
 */
export function findNetlinkAck(datagram: Uint8Array, sequence: number): number | null {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  let offset = 0;
  while (datagram.byteLength - offset >= NLMSG_HEADER_LENGTH) {
    const length = view.getUint32(offset, HOST_LITTLE_ENDIAN);
    if (length < NLMSG_HEADER_LENGTH || length > datagram.byteLength - offset) return null;
    const type = view.getUint16(offset + 4, HOST_LITTLE_ENDIAN);
    const seq = view.getUint32(offset + 8, HOST_LITTLE_ENDIAN);
    if (type === NLMSG_ERROR && seq === sequence && length >= NLMSG_HEADER_LENGTH + 4) {
      return view.getInt32(offset + NLMSG_HEADER_LENGTH, HOST_LITTLE_ENDIAN);
    }
    offset += align4(length);
  }
  return null;
}
