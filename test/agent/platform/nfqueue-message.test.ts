// The pure NFQUEUE codec: packets built by test/helpers/nfqueue-encoder.ts, requests checked
// byte by byte against the kernel's struct layouts, and properties over arbitrary datagrams.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NF_REPEAT,
  decodeNfqueueMessages,
  encodeNfqueueBind,
  encodeNfqueueUnbind,
  encodeNfqueueVerdict,
} from '../../../src/agent/platform/nfqueue-message.js';
import { concat, queuedPacketMessage, tcpPacket } from '../../helpers/nfqueue-encoder.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const hello = new TextEncoder().encode('\x16\x03\x01 hello');

describe('decodeNfqueueMessages', () => {
  it('decodes a queued IPv4 TCP segment with its id, mark, sequence, flags and a copy of its data', () => {
    const packet = tcpPacket({ family: 4, source: '100.64.0.2', destination: '198.51.100.10', sourcePort: 40000, destinationPort: 443, sequence: 0xfffffff0, payload: hello });
    const datagram = queuedPacketMessage({ queue: 20000, id: 7, mark: 0x1234, packet });
    const { packets, errors } = decodeNfqueueMessages(datagram);
    expect(errors).toEqual([]);
    expect(packets).toHaveLength(1);
    const [p] = packets;
    expect(p).toMatchObject({ queue: 20000, id: 7, hook: 2, mark: 0x1234, family: 4, protocolNumber: 6, source: '100.64.0.2', destination: '198.51.100.10' });
    expect(p?.tcp).toMatchObject({ sourcePort: 40000, destinationPort: 443, sequence: 0xfffffff0, syn: false, ack: true, fin: false, rst: false });
    expect([...(p?.tcp?.payload ?? [])]).toEqual([...hello]);
    datagram.fill(0); // the reader reuses its buffer: the payload must be a copy
    expect([...(p?.tcp?.payload ?? [])]).toEqual([...hello]);
  });

  it('decodes IPv6, TCP options, a SYN, several messages in one datagram, and a missing mark as 0', () => {
    const syn = tcpPacket({
      family: 6,
      source: 'fd52:756e:7761::2',
      destination: '2001:db8::10',
      sourcePort: 1234,
      destinationPort: 80,
      sequence: 1,
      flags: { syn: true },
      options: Uint8Array.of(2, 4, 5, 0xb4),
    });
    const plain = tcpPacket({ family: 4, source: '10.0.0.1', destination: '10.0.0.2', sourcePort: 1, destinationPort: 2, sequence: 3 });
    const { packets, errors } = decodeNfqueueMessages(concat(queuedPacketMessage({ queue: 1, id: 1, packet: syn }), queuedPacketMessage({ queue: 1, id: 2, packet: plain, capLength: 1500 })));
    expect(errors).toEqual([]);
    expect(packets.map((p) => [p.id, p.family, p.destination, p.mark, p.tcp?.syn, p.tcp?.payload.length])).toEqual([
      [1, 6, '2001:db8::10', 0, true, 0],
      [2, 4, '10.0.0.2', 0, false, 0],
    ]);
    expect(packets[1]?.originalLength).toBe(1500);
  });

  it('reports a packet it cannot read with its id, so it can still be answered', () => {
    const { packets, errors } = decodeNfqueueMessages(queuedPacketMessage({ queue: 5, id: 99, packet: Uint8Array.of(0x50, 1, 2) }));
    expect(packets).toEqual([]);
    expect(errors).toEqual([{ code: 'RW_NFQUEUE_MALFORMED', message: 'NFQUEUE packet 99 of queue 5: payload has IP version 5', id: 99, queue: 5 }]);
    expect(decodeNfqueueMessages(queuedPacketMessage({ queue: 5, id: 3 })).errors[0]).toMatchObject({ id: 3, message: expect.stringContaining('no payload') });
  });

  it('on any bytes, returns packets and errors, never throws', () => {
    const valid = tcpPacket({ family: 4, source: '1.2.3.4', destination: '5.6.7.8', sourcePort: 1, destinationPort: 443, sequence: 9, payload: hello });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (noise, at, value) => {
        decodeNfqueueMessages(noise);
        const message = queuedPacketMessage({ queue: 1, id: 1, packet: valid, mark: 4 });
        message[at % message.length] = value;
        const { packets, errors } = decodeNfqueueMessages(message);
        expect(packets.length + errors.length).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('NFQUEUE requests', () => {
  function header(bytes: Uint8Array) {
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    return { length: v.getUint32(0, LE), type: v.getUint16(4, LE), flags: v.getUint16(6, LE), queue: v.getUint16(18, false) };
  }

  it('a verdict carries nfqnl_msg_verdict_hdr and, when given, the new mark', () => {
    const bytes = encodeNfqueueVerdict(20000, 0xdeadbeef, NF_REPEAT, 0x03000000);
    expect(header(bytes)).toEqual({ length: 16 + 4 + 12 + 8, type: 0x0301, flags: 1, queue: 20000 });
    const v = new DataView(bytes.buffer);
    expect(v.getUint16(20, LE)).toBe(12); // NFQA_VERDICT_HDR length
    expect(v.getUint16(22, LE)).toBe(2);
    expect(v.getUint32(24, false)).toBe(NF_REPEAT);
    expect(v.getUint32(28, false)).toBe(0xdeadbeef);
    expect(v.getUint16(34, LE)).toBe(3); // NFQA_MARK
    expect(v.getUint32(36, false)).toBe(0x03000000);
    expect(encodeNfqueueVerdict(1, 1, NF_REPEAT).length).toBe(32);
  });

  it('bind asks for an ack, whole packets, a queue length and GSO; unbind names the queue', () => {
    const bind = encodeNfqueueBind(7, 1, { copyRange: 0xffff, maxLength: 8192 });
    expect(header(bind)).toMatchObject({ type: 0x0302, flags: 1 | 4, queue: 7 });
    expect(Buffer.from(bind.subarray(20, 28)).toString('hex')).toBe('0800010001000000'); // CFG_CMD bind, pf 0
    expect(Buffer.from(bind.subarray(28, 40)).toString('hex')).toBe('090002000000ffff02000000'); // CFG_PARAMS copy_range, COPY_PACKET
    expect(header(encodeNfqueueUnbind(7, 2))).toMatchObject({ type: 0x0302, queue: 7 });
    expect(() => encodeNfqueueVerdict(70000, 1, NF_REPEAT)).toThrow(RangeError);
  });
});
