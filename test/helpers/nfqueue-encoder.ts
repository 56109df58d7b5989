// Builds NFQUEUE packet messages (what the kernel sends the reader) from structured values,
// written independently of src so that a round trip checks the decoder.
import { ipv4Bytes, ipv6Bytes } from './nflog-encoder.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; // netlink headers are host order
const NFQNL_MSG_PACKET = 0x0300;

export interface TcpSpec {
  readonly family: 4 | 6;
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly sequence: number;
  readonly flags?: { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean };
  readonly payload?: Uint8Array;
  /** TCP option bytes (padded to 4 by the caller). */
  readonly options?: Uint8Array;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** An IP packet carrying one TCP segment. */
export function tcpPacket(spec: TcpSpec): Uint8Array {
  const options = spec.options ?? new Uint8Array(0);
  const tcp = new Uint8Array(20 + options.length);
  const v = new DataView(tcp.buffer);
  v.setUint16(0, spec.sourcePort);
  v.setUint16(2, spec.destinationPort);
  v.setUint32(4, spec.sequence >>> 0);
  tcp[12] = ((20 + options.length) / 4) << 4;
  const f = spec.flags ?? { ack: true };
  tcp[13] = (f.fin ? 1 : 0) | (f.syn ? 2 : 0) | (f.rst ? 4 : 0) | (f.ack ? 0x10 : 0);
  tcp.set(options, 20);
  const segment = concat(tcp, spec.payload ?? new Uint8Array(0));
  if (spec.family === 4) {
    const header = new Uint8Array(20);
    const h = new DataView(header.buffer);
    header[0] = 0x45;
    h.setUint16(2, 20 + segment.length);
    header[8] = 64;
    header[9] = 6;
    header.set(ipv4Bytes(spec.source), 12);
    header.set(ipv4Bytes(spec.destination), 16);
    return concat(header, segment);
  }
  const header = new Uint8Array(40);
  const h = new DataView(header.buffer);
  header[0] = 0x60;
  h.setUint16(4, segment.length);
  header[6] = 6;
  header[7] = 64;
  header.set(ipv6Bytes(spec.source), 8);
  header.set(ipv6Bytes(spec.destination), 24);
  return concat(header, segment);
}

function attribute(type: number, payload: Uint8Array): Uint8Array {
  const length = 4 + payload.length;
  const out = new Uint8Array((length + 3) & ~3);
  const v = new DataView(out.buffer);
  v.setUint16(0, length, LE);
  v.setUint16(2, type, LE);
  out.set(payload, 4);
  return out;
}

function be32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

export interface QueuedSpec {
  readonly queue: number;
  readonly id: number;
  readonly hook?: number;
  readonly mark?: number;
  readonly packet?: Uint8Array;
  readonly capLength?: number;
}

/** One NFQNL_MSG_PACKET netlink message. */
export function queuedPacketMessage(spec: QueuedSpec): Uint8Array {
  const header = new Uint8Array(7);
  const h = new DataView(header.buffer);
  h.setUint32(0, spec.id >>> 0);
  h.setUint16(4, 0x0800);
  header[6] = spec.hook ?? 2;
  const attributes = concat(
    attribute(1, header),
    ...(spec.mark !== undefined ? [attribute(3, be32(spec.mark))] : []),
    ...(spec.packet !== undefined ? [attribute(10, spec.packet)] : []),
    ...(spec.capLength !== undefined ? [attribute(13, be32(spec.capLength))] : []),
  );
  const body = concat(Uint8Array.of(2, 0, spec.queue >> 8, spec.queue & 0xff), attributes);
  const message = new Uint8Array(16 + body.length);
  const v = new DataView(message.buffer);
  v.setUint32(0, message.length, LE);
  v.setUint16(4, NFQNL_MSG_PACKET, LE);
  message.set(body, 16);
  return message;
}
