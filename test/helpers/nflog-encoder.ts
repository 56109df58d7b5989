// Builds NFLOG netlink datagrams from structured values: the inverse of
// decodeNflogMessages, written independently of src so that a round trip checks both.
import type { NflogPacket } from '../../src/agent/platform/index.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; // netlink headers are host order
const NFULNL_MSG_PACKET = 0x0400;
const ATTR = { HDR: 1, MARK: 2, TIMESTAMP: 3, INDEV: 4, OUTDEV: 5, PAYLOAD: 9, PREFIX: 10, UID: 11, GID: 14 } as const;
const PROTOCOL_NUMBERS = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132 } as const;

export interface EncodeOptions {
  /** Write NFULA_TIMESTAMP from packet.time (default true). The kernel omits it for most locally generated packets. */
  readonly timestamp?: boolean;
  /** Extra bytes after the transport header (the logged packet's data). */
  readonly data?: Uint8Array;
  /** IPv6 extension headers (next-header numbers) to put before the transport header. */
  readonly ipv6Extensions?: readonly (0 | 43 | 60)[];
}

export function ipv4Bytes(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not IPv4: ${text}`);
  return Uint8Array.from(parts);
}

export function ipv6Bytes(text: string): Uint8Array {
  let groups: number[] = [];
  let tail = text;
  const bytes = new Uint8Array(16);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = ipv4Bytes(dotted[1]);
    tail = `${text.slice(0, -dotted[1].length)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, rest] = tail.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  if (rest === undefined) groups = parse(head);
  else {
    const h = parse(head);
    const r = parse(rest);
    groups = [...h, ...Array<number>(8 - h.length - r.length).fill(0), ...r];
  }
  if (groups.length !== 8) throw new Error(`not IPv6: ${text}`);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function transportHeader(packet: NflogPacket): Uint8Array {
  const { protocol } = packet;
  if (protocol === 'tcp') {
    const h = new Uint8Array(20);
    const v = new DataView(h.buffer);
    v.setUint16(0, packet.sourcePort ?? 0);
    v.setUint16(2, packet.destinationPort ?? 0);
    h[12] = 5 << 4;
    const f = packet.tcpFlags;
    h[13] = (f?.fin ? 0x01 : 0) | (f?.syn ? 0x02 : 0) | (f?.rst ? 0x04 : 0) | (f?.ack ? 0x10 : 0);
    return h;
  }
  if (protocol === 'udp' || protocol === 'sctp') {
    const h = new Uint8Array(protocol === 'udp' ? 8 : 12);
    const v = new DataView(h.buffer);
    v.setUint16(0, packet.sourcePort ?? 0);
    v.setUint16(2, packet.destinationPort ?? 0);
    return h;
  }
  if (protocol === 'icmp' || protocol === 'icmpv6') return Uint8Array.of(packet.icmpType ?? 0, 0, 0, 0, 0, 0, 0, 0);
  return new Uint8Array(0);
}

/** The logged packet from its IP header on. */
export function ipPacket(packet: NflogPacket, options: EncodeOptions = {}): Uint8Array {
  const transport = concat(transportHeader(packet), options.data ?? new Uint8Array(0));
  if (packet.family === 4) {
    const header = new Uint8Array(20);
    const v = new DataView(header.buffer);
    header[0] = 0x45;
    v.setUint16(2, 20 + transport.length);
    header[8] = 64;
    header[9] = packet.protocolNumber;
    header.set(ipv4Bytes(packet.source), 12);
    header.set(ipv4Bytes(packet.destination), 16);
    return concat(header, transport);
  }
  const extensions = options.ipv6Extensions ?? [];
  const header = new Uint8Array(40);
  const v = new DataView(header.buffer);
  header[0] = 0x60;
  header[6] = extensions[0] ?? packet.protocolNumber;
  header[7] = 64;
  header.set(ipv6Bytes(packet.source), 8);
  header.set(ipv6Bytes(packet.destination), 24);
  const chain = extensions.map((_, i) => Uint8Array.of(extensions[i + 1] ?? packet.protocolNumber, 0, 1, 4, 0, 0, 0, 0)); // 8-byte PadN option
  const body = concat(...chain, transport);
  v.setUint16(4, body.length);
  return concat(header, body);
}

function attribute(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + payload.length, LE);
  v.setUint16(2, type, LE);
  out.set(payload, 4);
  return out;
}

function be32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** One NFULNL_MSG_PACKET netlink message for `packet`. */
export function encodeNflogPacket(packet: NflogPacket, options: EncodeOptions = {}): Uint8Array {
  const hwProtocol = Uint8Array.of(packet.family === 4 ? 0x08 : 0x86, packet.family === 4 ? 0x00 : 0xdd, 3, 0);
  const attributes = [attribute(ATTR.HDR, hwProtocol)];
  if (packet.mark !== undefined) attributes.push(attribute(ATTR.MARK, be32(packet.mark)));
  if (options.timestamp ?? true) {
    const ts = new Uint8Array(16);
    const v = new DataView(ts.buffer);
    const ms = packet.time.getTime();
    v.setBigUint64(0, BigInt(Math.floor(ms / 1000)));
    v.setBigUint64(8, BigInt((ms % 1000) * 1000));
    attributes.push(attribute(ATTR.TIMESTAMP, ts));
  }
  if (packet.inInterface !== undefined) attributes.push(attribute(ATTR.INDEV, be32(packet.inInterface)));
  if (packet.outInterface !== undefined) attributes.push(attribute(ATTR.OUTDEV, be32(packet.outInterface)));
  attributes.push(attribute(ATTR.PAYLOAD, ipPacket(packet, options)));
  if (packet.prefix !== '') attributes.push(attribute(ATTR.PREFIX, concat(new TextEncoder().encode(packet.prefix), Uint8Array.of(0))));
  if (packet.uid !== undefined) attributes.push(attribute(ATTR.UID, be32(packet.uid)));
  if (packet.gid !== undefined) attributes.push(attribute(ATTR.GID, be32(packet.gid)));

  const body = concat(Uint8Array.of(packet.family === 4 ? 2 : 10, 0, packet.group >> 8, packet.group & 0xff), ...attributes);
  const header = new Uint8Array(16);
  const v = new DataView(header.buffer);
  v.setUint32(0, 16 + body.length, LE);
  v.setUint16(4, NFULNL_MSG_PACKET, LE);
  return concat(header, body);
}

/** Several netlink messages in one datagram, each padded to 4 bytes as the kernel does. */
export function datagram(...messages: Uint8Array[]): Uint8Array {
  return concat(...messages.map((m) => concat(m, new Uint8Array(align4(m.length) - m.length))));
}

/** A well-formed packet to start tests from; an override of undefined removes the field. */
export function samplePacket(overrides: Partial<NflogPacket> = {}): NflogPacket {
  const packet: Record<string, unknown> = {
    group: 7,
    prefix: 'rw:block',
    family: 4,
    protocol: 'tcp',
    protocolNumber: PROTOCOL_NUMBERS.tcp,
    source: '198.51.100.1',
    destination: '203.0.113.5',
    sourcePort: 40000,
    destinationPort: 443,
    tcpFlags: { syn: true, ack: false, rst: false, fin: false },
    uid: 1001,
    gid: 1001,
    outInterface: 2,
    time: new Date('2026-11-26T12:00:00.123Z'),
    ...overrides,
  };
  for (const key of Object.keys(packet)) if (packet[key] === undefined) delete packet[key];
  return packet as unknown as NflogPacket;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
