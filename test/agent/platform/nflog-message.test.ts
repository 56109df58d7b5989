// The pure NFLOG decoder: hand-built netlink datagrams (test/helpers/nflog-encoder.ts) and properties.
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeNflogMessages, type NflogPacket } from '../../../src/agent/platform/index.js';
import { encodeNflogBindRequest, findNetlinkAck, formatIpv6 } from '../../../src/agent/platform/nflog-message.js';
import { concat, datagram, encodeNflogPacket, ipv6Bytes, samplePacket } from '../../helpers/nflog-encoder.js';

const RECEIVED_AT = new Date('2026-11-26T13:00:00.000Z');
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decode(bytes: Uint8Array) {
  return decodeNflogMessages(bytes, RECEIVED_AT);
}

/** A netlink message of `type` with `body` after the 16-byte header. */
function netlinkMessage(type: number, body: Uint8Array, sequence = 0): Uint8Array {
  const header = new Uint8Array(16);
  const v = new DataView(header.buffer);
  v.setUint32(0, 16 + body.length, LE);
  v.setUint16(4, type, LE);
  v.setUint32(8, sequence, LE);
  return concat(header, body);
}

function int32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, LE);
  return b;
}

describe('decodeNflogMessages', () => {
  it('decodes a blocked IPv4 TCP SYN with its prefix, ports, flags, uid, gid and interface', () => {
    const packet = samplePacket();
    const { packets, errors } = decode(encodeNflogPacket(packet));
    expect(errors).toEqual([]);
    expect(packets).toStrictEqual([packet]);
  });

  it('decodes IPv6 UDP and uses the receive time when the kernel gave no timestamp', () => {
    const packet = samplePacket({
      family: 6,
      protocol: 'udp',
      protocolNumber: 17,
      source: '2001:db8:ffff::1',
      destination: '2001:db8::53',
      sourcePort: 5353,
      destinationPort: 443,
      tcpFlags: undefined,
    });
    const [decoded] = decode(encodeNflogPacket(packet, { timestamp: false })).packets;
    expect(decoded).toMatchObject({ family: 6, protocol: 'udp', source: '2001:db8:ffff::1', destination: '2001:db8::53', sourcePort: 5353, destinationPort: 443 });
    expect(decoded?.tcpFlags).toBeUndefined();
    expect(decoded?.time).toEqual(RECEIVED_AT);
  });

  it('reports ICMP and ICMPv6 echo requests with their type and no ports', () => {
    const v4 = samplePacket({ protocol: 'icmp', protocolNumber: 1, sourcePort: null, destinationPort: null, tcpFlags: undefined, icmpType: 8 });
    const v6 = samplePacket({
      family: 6,
      protocol: 'icmpv6',
      protocolNumber: 58,
      source: '2001:db8:ffff::1',
      destination: '2001:db8::5',
      sourcePort: null,
      destinationPort: null,
      tcpFlags: undefined,
      icmpType: 128,
    });
    const { packets, errors } = decode(datagram(encodeNflogPacket(v4), encodeNflogPacket(v6)));
    expect(errors).toEqual([]);
    expect(packets).toStrictEqual([v4, v6]);
  });

  it('finds the transport header behind IPv6 extension headers', () => {
    const packet = samplePacket({ family: 6, source: '2001:db8::1', destination: '2001:db8::2' });
    const [decoded] = decode(encodeNflogPacket(packet, { ipv6Extensions: [0, 60, 43] })).packets;
    expect(decoded).toStrictEqual(packet);
  });

  it('keeps every message of a datagram holding several, in order', () => {
    const packets = [1, 2, 3, 4, 5].map((n) => samplePacket({ sourcePort: 40000 + n, prefix: `p${n}` }));
    const decoded = decode(datagram(...packets.map((p) => encodeNflogPacket(p))));
    expect(decoded.packets.map((p) => p.sourcePort)).toEqual([40001, 40002, 40003, 40004, 40005]);
    expect(decoded.packets.map((p) => p.prefix)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('gives null ports when the logged copy ends before the transport header', () => {
    // Labelled 'other', the encoder writes no transport header after an IP header that says TCP.
    const headerOnly = samplePacket({ protocol: 'other', protocolNumber: 6, sourcePort: null, destinationPort: null, tcpFlags: undefined });
    const { packets, errors } = decode(encodeNflogPacket(headerOnly));
    expect(errors).toEqual([]);
    expect(packets[0]).toMatchObject({ protocol: 'tcp', protocolNumber: 6, sourcePort: null, destinationPort: null });
    expect(packets[0]?.tcpFlags).toBeUndefined();
  });

  it('gives no ports for a non-first IPv4 fragment', () => {
    const message = encodeNflogPacket(samplePacket({ uid: undefined, gid: undefined, prefix: '' }));
    // The payload is the last attribute here; its IPv4 header starts 4 bytes into it. Set a fragment offset.
    const ipStart = message.length - (20 + 20);
    message[ipStart + 6] = 0x00;
    message[ipStart + 7] = 0x10;
    const [decoded] = decode(message).packets;
    expect(decoded).toMatchObject({ protocol: 'tcp', sourcePort: null, destinationPort: null });
  });

  it('recognises attributes flagged NLA_F_NET_BYTEORDER', () => {
    const message = encodeNflogPacket(samplePacket({ uid: undefined, gid: undefined, prefix: '' }));
    // The first attribute (packet header) starts at byte 20; set the flag on every attribute type.
    for (let offset = 20; offset < message.length; ) {
      const view = new DataView(message.buffer, message.byteOffset);
      const length = view.getUint16(offset, LE);
      view.setUint16(offset + 2, view.getUint16(offset + 2, LE) | 0x4000, LE);
      offset += (length + 3) & ~3;
    }
    expect(decode(message).packets[0]?.destinationPort).toBe(443);
  });

  it('returns frozen packets', () => {
    const [decoded] = decode(encodeNflogPacket(samplePacket())).packets;
    expect(Object.isFrozen(decoded)).toBe(true);
    expect(Object.isFrozen(decoded?.tcpFlags)).toBe(true);
  });

  it('skips acknowledgements and reports a netlink error in the stream', () => {
    const ack = netlinkMessage(2, int32(0));
    const refusal = netlinkMessage(2, int32(-1));
    const { packets, errors } = decode(datagram(ack, encodeNflogPacket(samplePacket()), refusal));
    expect(packets).toHaveLength(1);
    expect(errors).toEqual([{ code: 'RW_NFLOG_MALFORMED', message: 'netlink error -1 in the log stream' }]);
  });

  describe('malformed input becomes errors, not exceptions', () => {
    it('a message longer than the datagram', () => {
      const message = encodeNflogPacket(samplePacket());
      const { packets, errors } = decode(message.subarray(0, message.length - 3));
      expect(packets).toEqual([]);
      expect(errors[0]?.message).toMatch(/claims length/);
    });

    it('a bad attribute spoils only its own message', () => {
      const bad = encodeNflogPacket(samplePacket());
      new DataView(bad.buffer).setUint16(20, 2, LE); // first attribute length 2 (< 4)
      const { packets, errors } = decode(datagram(bad, encodeNflogPacket(samplePacket({ sourcePort: 1 }))));
      expect(packets.map((p) => p.sourcePort)).toEqual([1]);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toMatch(/attribute/);
    });

    it('a packet without payload (copy mode not "packet")', () => {
      const body = concat(Uint8Array.of(2, 0, 0, 7));
      const { errors } = decode(netlinkMessage(0x0400, body));
      expect(errors[0]?.message).toMatch(/no payload/);
    });

    it('a payload that is not IPv4 or IPv6', () => {
      const message = encodeNflogPacket(samplePacket({ uid: undefined, gid: undefined, prefix: '' }));
      message[message.length - 40] = 0x55;
      expect(decode(message).errors[0]?.message).toMatch(/IP version 5/);
    });

    it('an unexpected message type and trailing bytes', () => {
      const { errors } = decode(concat(netlinkMessage(0x0401, new Uint8Array(4)), new Uint8Array(5)));
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/type 0x401/), expect.stringMatching(/5 trailing bytes/)]);
    });
  });
});

describe('netlink requests and acknowledgements', () => {
  it('finds the status of the ack for a sequence number and ignores others', () => {
    const bytes = datagram(netlinkMessage(2, int32(-1), 9), netlinkMessage(2, int32(0), 10));
    expect(findNetlinkAck(bytes, 9)).toBe(-1);
    expect(findNetlinkAck(bytes, 10)).toBe(0);
    expect(findNetlinkAck(bytes, 11)).toBeNull();
  });

  it('a bind request names the group in network byte order and asks for an ack', () => {
    const request = encodeNflogBindRequest(0x1234, 5, 512);
    const view = new DataView(request.buffer);
    expect(view.getUint32(0, LE)).toBe(request.length);
    expect(view.getUint16(4, LE)).toBe(0x0401); // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG
    expect(view.getUint16(6, LE) & 0x5).toBe(0x5); // NLM_F_REQUEST | NLM_F_ACK
    expect(view.getUint16(18, false)).toBe(0x1234);
  });
});

// ---- properties ----

const KNOWN_NUMBERS = new Set([0, 1, 6, 17, 43, 44, 50, 51, 58, 60, 132]);

function canonicalIpv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

const ipv6Address = fc
  .oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    // Mostly-zero addresses exercise "::" placement and embedded IPv4.
    fc.array(fc.constantFrom(0, 0, 0, 1, 0xff, 0xffff), { minLength: 8, maxLength: 8 }).map((groups) => {
      const b = new Uint8Array(16);
      groups.forEach((g, i) => new DataView(b.buffer).setUint16(i * 2, g));
      return b;
    }),
  )
  .map(canonicalIpv6);
const ipv4Address = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [...b].join('.'));
const u32 = fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined });

const packetArbitrary: fc.Arbitrary<NflogPacket> = fc
  .record({
    group: fc.nat({ max: 0xffff }),
    prefix: fc.string({ maxLength: 64 }).filter((s) => !s.includes('\0')),
    family: fc.constantFrom(4 as const, 6 as const),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'icmpv6' as const, 'sctp' as const, 'other' as const),
    otherNumber: fc.nat({ max: 255 }).filter((n) => !KNOWN_NUMBERS.has(n)),
    v4: fc.tuple(ipv4Address, ipv4Address),
    v6: fc.tuple(ipv6Address, ipv6Address),
    ports: fc.tuple(fc.nat({ max: 0xffff }), fc.nat({ max: 0xffff })),
    flags: fc.record({ syn: fc.boolean(), ack: fc.boolean(), rst: fc.boolean(), fin: fc.boolean() }),
    icmpType: fc.nat({ max: 255 }),
    uid: u32,
    gid: u32,
    mark: u32,
    inInterface: u32,
    outInterface: u32,
    time: fc.date({ min: new Date(0), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
  })
  .map((r) => {
    const numbers = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132, other: r.otherNumber };
    const hasPorts = r.protocol === 'tcp' || r.protocol === 'udp' || r.protocol === 'sctp';
    const [source, destination] = r.family === 4 ? r.v4 : r.v6;
    const packet: Record<string, unknown> = {
      group: r.group,
      prefix: r.prefix,
      family: r.family,
      protocol: r.protocol,
      protocolNumber: numbers[r.protocol],
      source,
      destination,
      sourcePort: hasPorts ? r.ports[0] : null,
      destinationPort: hasPorts ? r.ports[1] : null,
    };
    if (r.protocol === 'tcp') packet.tcpFlags = { ...r.flags }; // fc.record objects have a null prototype
    if (r.protocol === 'icmp' || r.protocol === 'icmpv6') packet.icmpType = r.icmpType;
    for (const key of ['uid', 'gid', 'mark', 'inInterface', 'outInterface'] as const) if (r[key] !== undefined) packet[key] = r[key];
    packet.time = r.time;
    return packet as unknown as NflogPacket;
  });

describe('decodeNflogMessages properties', () => {
  it('never throws on random bytes, and every problem is RW_NFLOG_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
        const { errors } = decode(bytes);
        expect(errors.every((e) => e.code === 'RW_NFLOG_MALFORMED')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on a valid NFLOG message with random bytes after its header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (body, asPacket) => {
        decode(netlinkMessage(asPacket ? 0x0400 : 2, body));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on a real datagram cut short or with one byte changed', () => {
    fc.assert(
      fc.property(packetArbitrary, fc.nat(), fc.nat({ max: 255 }), fc.boolean(), (packet, at, value, cut) => {
        const bytes = encodeNflogPacket(packet);
        const index = at % bytes.length;
        if (cut) decode(bytes.subarray(0, index));
        else {
          bytes[index] = value;
          decode(bytes);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes what the encoder built from a structured packet (round trip)', () => {
    fc.assert(
      fc.property(packetArbitrary, fc.subarray([0, 60, 43] as const), (packet, extensions) => {
        const { packets, errors } = decode(encodeNflogPacket(packet, { ipv6Extensions: packet.family === 6 ? extensions : [] }));
        expect(errors).toEqual([]);
        expect(packets).toStrictEqual([packet]);
      }),
      { numRuns: 1000 },
    );
  });

  it('round-trips several packets in one datagram', () => {
    fc.assert(
      fc.property(fc.array(packetArbitrary, { minLength: 1, maxLength: 8 }), (list) => {
        expect(decode(datagram(...list.map((p) => encodeNflogPacket(p)))).packets).toStrictEqual(list);
      }),
      { numRuns: 200 },
    );
  });

  it('prints IPv6 addresses exactly as Node does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), ipv6Address.map(ipv6Bytes)), (bytes) => {
        expect(formatIpv6(new DataView(bytes.buffer, bytes.byteOffset, 16), 0)).toBe(canonicalIpv6(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});
