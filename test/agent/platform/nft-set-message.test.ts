// The pure nftables set-element codec: a batch checked byte by byte against what nft 1.0.6
// sends for the same `add element`, properties (framing, alignment, a round trip through a
// decoder written here), and the kernel's answers turned into refusals naming the element.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitNetlinkFrames } from '../../../src/agent/platform/netlink-frames.js';
import {
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFT_MSG_DELSETELEM,
  NFT_MSG_NEWSETELEM,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  SetElementReplies,
  concatKey,
  decodeNetlinkAcks,
  encodeSetElementBatch,
  type SetElementOperation,
} from '../../../src/agent/platform/nft-set-message.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Host-order u32/u16 as hex, the way the netlink headers are written. */
function u32(n: number): string {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b.toString('hex');
}
function u16(n: number): string {
  const b = Buffer.alloc(2);
  if (LE) b.writeUInt16LE(n);
  else b.writeUInt16BE(n);
  return b.toString('hex');
}

// ---- a small decoder of our own, for the round trip ----

interface Attribute {
  readonly type: number;
  readonly nested: boolean;
  readonly payload: Uint8Array;
  readonly offset: number;
}

function attributes(bytes: Uint8Array, base = 0): Attribute[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Attribute[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const length = view.getUint16(at, LE);
    const type = view.getUint16(at + 2, LE);
    expect(length).toBeGreaterThanOrEqual(4);
    expect(at + length).toBeLessThanOrEqual(bytes.byteLength);
    out.push({ type: type & 0x3fff, nested: (type & 0x8000) !== 0, payload: bytes.subarray(at + 4, at + length), offset: base + at });
    at += (length + 3) & ~3;
  }
  expect(at).toBe(bytes.byteLength);
  return out;
}

function one(list: Attribute[], type: number): Attribute {
  const found = list.filter((a) => a.type === type);
  expect(found).toHaveLength(1);
  return found[0] as Attribute;
}

function cString(payload: Uint8Array): string {
  expect(payload[payload.byteLength - 1]).toBe(0);
  return new TextDecoder().decode(payload.subarray(0, payload.byteLength - 1));
}

interface DecodedMessage {
  type: number;
  flags: number;
  sequence: number;
  family: number;
  table: string;
  set: string;
  elements: { key: string; timeoutMs?: number; offset: number }[];
}

function decodeMessage(frame: { type: number; flags: number; sequence: number; payload: Uint8Array }): DecodedMessage {
  expect(frame.payload[1]).toBe(0); // NFNETLINK_V0
  expect(new DataView(frame.payload.buffer, frame.payload.byteOffset).getUint16(2, false)).toBe(0); // res_id
  const top = attributes(frame.payload.subarray(4), 16 + 4);
  const list = one(top, 3);
  expect(list.nested).toBe(true);
  const elements = attributes(list.payload, list.offset + 4).map((element) => {
    expect(element.type).toBe(1);
    expect(element.nested).toBe(true);
    const inner = attributes(element.payload);
    const key = one(inner, 1);
    expect(key.nested).toBe(true);
    const value = one(attributes(key.payload), 1);
    const timeouts = inner.filter((a) => a.type === 4);
    const decoded: { key: string; timeoutMs?: number; offset: number } = { key: hex(value.payload), offset: element.offset };
    if (timeouts[0]) {
      expect(timeouts[0].payload.byteLength).toBe(8);
      decoded.timeoutMs = Number(new DataView(timeouts[0].payload.buffer, timeouts[0].payload.byteOffset).getBigUint64(0, false));
    }
    return decoded;
  });
  return {
    type: frame.type,
    flags: frame.flags,
    sequence: frame.sequence,
    family: frame.payload[0] ?? -1,
    table: cString(one(top, 1).payload),
    set: cString(one(top, 2).payload),
    elements,
  };
}

// ---- answers, as the kernel writes them ----

function ack(sequence: number, errno: number, options: { text?: string; offset?: number; echo?: Uint8Array } = {}): Uint8Array {
  const tlvs: Uint8Array[] = [];
  const tlv = (type: number, payload: Uint8Array): void => {
    const bytes = new Uint8Array((4 + payload.byteLength + 3) & ~3);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, 4 + payload.byteLength, LE);
    view.setUint16(2, type, LE);
    bytes.set(payload, 4);
    tlvs.push(bytes);
  };
  if (options.text !== undefined) tlv(1, new TextEncoder().encode(`${options.text}\0`));
  if (options.offset !== undefined) {
    const offset = new Uint8Array(4);
    new DataView(offset.buffer).setUint32(0, options.offset, LE);
    tlv(2, offset);
  }
  const echoed = options.echo ?? new Uint8Array(16);
  const echoView = new DataView(echoed.buffer, echoed.byteOffset);
  if (!options.echo) {
    echoView.setUint32(0, 16, LE);
    echoView.setUint32(8, sequence, LE);
  }
  const tail = tlvs.reduce((n, t) => n + t.byteLength, 0);
  const length = 16 + 4 + ((echoed.byteLength + 3) & ~3) + tail;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, LE);
  view.setUint16(4, 2, LE); // NLMSG_ERROR
  view.setUint16(6, (options.echo ? 0 : NLM_F_CAPPED) | (tlvs.length > 0 ? NLM_F_ACK_TLVS : 0), LE);
  view.setUint32(8, sequence, LE);
  view.setInt32(16, -errno, LE);
  bytes.set(echoed, 20);
  let at = 20 + ((echoed.byteLength + 3) & ~3);
  for (const t of tlvs) {
    bytes.set(t, at);
    at += t.byteLength;
  }
  return bytes;
}

const v4 = (a: number, b: number, c: number, d: number, port: number) => concatKey([a, b, c, d], port);

describe('concatKey', () => {
  it('pads each field to 4 bytes: ipv4 . port is 8 bytes, ipv6 . port 20, the port big-endian', () => {
    expect(hex(v4(203, 0, 113, 5, 443))).toBe('cb00710501bb0000');
    const six = concatKey([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1], 443);
    expect(hex(six)).toBe('20010db800000000000000000000000101bb0000');
  });

  it('refuses what is not an address or a port', () => {
    expect(() => concatKey([1, 2, 3], 80)).toThrow(RangeError);
    expect(() => concatKey([1, 2, 3, 4], 65536)).toThrow(RangeError);
  });
});

describe('encodeSetElementBatch', () => {
  it('is byte for byte what nft 1.0.6 sends for `add element inet T allow4 { 203.0.113.5 . 443 timeout 60s }`, with ACK asked', () => {
    const batch = encodeSetElementBatch({
      family: 1,
      table: 'T',
      firstSequence: 0,
      operations: [{ kind: 'add', set: 'allow4', elements: [{ key: v4(203, 0, 113, 5, 443), timeoutMs: 60_000, label: '203.0.113.5 . 443' }] }],
    });
    // From `nft --debug=mnl`: the same attributes, except nft's NFTA_SET_ELEM_LIST_SET_ID (not needed for a named set).
    const expected = [
      u32(20) + u16(0x10) + u16(0x1) + u32(0) + u32(0) + '0000000a', // BATCH_BEGIN, res_id NFNL_SUBSYS_NFTABLES
      u32(76) + u16(0x0a0c) + u16(0x405) + u32(1) + u32(0) + '01000000', // NEWSETELEM, REQUEST|ACK|CREATE, inet
      u16(6) + u16(1) + '54000000', // NFTA_SET_ELEM_LIST_TABLE "T"
      u16(11) + u16(2) + '616c6c6f77340000', // NFTA_SET_ELEM_LIST_SET "allow4"
      u16(36) + u16(0x8003), // ELEMENTS, nested
      u16(32) + u16(0x8001), // LIST_ELEM, nested
      u16(12) + u16(4) + '000000000000ea60', // TIMEOUT be64 60000 ms
      u16(16) + u16(0x8001), // KEY, nested
      u16(12) + u16(1) + 'cb00710501bb0000', // DATA_VALUE
      u32(20) + u16(0x11) + u16(0x1) + u32(2) + u32(0) + '0000000a', // BATCH_END
    ].join('');
    expect(hex(batch.bytes)).toBe(expected);
    expect(batch.messages).toMatchObject([{ sequence: 1, kind: 'add', set: 'allow4', elementSpans: [[44, 76]] }]);
    expect([batch.beginSequence, batch.endSequence]).toEqual([0, 2]);
  });

  it('a refresh is add, delete, add anew in one batch, in order, with consecutive sequence numbers', () => {
    const key = v4(198, 51, 100, 10, 443);
    const batch = encodeSetElementBatch({
      family: 1,
      table: 'runwall_x',
      firstSequence: 41,
      operations: [
        { kind: 'add', set: 'allow4', elements: [{ key, label: 'a' }] },
        { kind: 'delete', set: 'allow4', elements: [{ key, label: 'a' }] },
        { kind: 'add', set: 'allow4', elements: [{ key, label: 'a', timeoutMs: 600_000 }] },
      ],
    });
    const { frames, error } = splitNetlinkFrames(batch.bytes);
    expect(error).toBeNull();
    expect(frames.map((f) => [f.type, f.sequence])).toEqual([
      [NFNL_MSG_BATCH_BEGIN, 41],
      [NFT_MSG_NEWSETELEM, 42],
      [NFT_MSG_DELSETELEM, 43],
      [NFT_MSG_NEWSETELEM, 44],
      [NFNL_MSG_BATCH_END, 45],
    ]);
    expect(frames[2]?.flags).toBe(0x5); // a delete does not ask to create
    expect(decodeMessage(frames[1]!).elements).toEqual([{ key: hex(key), offset: 52 }]); // no timeout on the first add
    expect(decodeMessage(frames[3]!).elements[0]?.timeoutMs).toBe(600_000);
  });

  it('splits an operation whose elements would overflow a 16-bit attribute length into several messages', () => {
    const elements = Array.from({ length: 5000 }, (_, i) => ({ key: v4(10, 0, i >> 8, i & 255, 443), timeoutMs: 1000, label: `${i}` }));
    const batch = encodeSetElementBatch({ family: 1, table: 't', firstSequence: 1, operations: [{ kind: 'add', set: 's', elements }] });
    expect(batch.messages.length).toBeGreaterThan(2);
    expect(batch.messages.flatMap((m) => m.elements)).toEqual(elements);
    const frames = splitNetlinkFrames(batch.bytes).frames.slice(1, -1);
    expect(frames.flatMap((f) => decodeMessage(f).elements.map((e) => e.key))).toEqual(elements.map((e) => hex(e.key)));
  });

  it('sends nothing but begin and end for no elements, and refuses names and values it cannot encode', () => {
    expect(encodeSetElementBatch({ family: 1, table: 't', firstSequence: 1, operations: [{ kind: 'add', set: 's', elements: [] }] }).messages).toEqual([]);
    const element = { key: v4(1, 2, 3, 4, 5), label: 'x' };
    const bad: [string, SetElementOperation][] = [
      ['', { kind: 'add', set: 's', elements: [element] }],
      ['t', { kind: 'add', set: 'a\0b', elements: [element] }],
      ['t', { kind: 'add', set: 'x'.repeat(256), elements: [element] }],
      ['t', { kind: 'add', set: 's', elements: [{ ...element, timeoutMs: 1.5 }] }],
      ['t', { kind: 'add', set: 's', elements: [{ ...element, timeoutMs: -1 }] }],
      ['t', { kind: 'add', set: 's', elements: [{ key: new Uint8Array(0), label: 'empty' }] }],
    ];
    for (const [table, operation] of bad) {
      expect(() => encodeSetElementBatch({ family: 1, table, firstSequence: 1, operations: [operation] })).toThrow(RangeError);
    }
  });

  const name = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0'));
  const element = fc.record(
    {
      key: fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ minLength: 1, maxLength: 64 })),
      timeoutMs: fc.maxSafeNat(),
      label: fc.string(),
    },
    { requiredKeys: ['key', 'label'] },
  );
  const operation = fc.record({ kind: fc.constantFrom('add' as const, 'delete' as const), set: name, elements: fc.array(element, { minLength: 1, maxLength: 12 }) });

  it('property: aligned frames, begin and end around consecutive sequences, and every element decodes back where its span says', () => {
    fc.assert(
      fc.property(name, fc.array(operation, { maxLength: 5 }), fc.nat({ max: 0xffffffff }), (table, operations, first) => {
        const batch = encodeSetElementBatch({ family: 1, table, operations, firstSequence: first });
        expect(batch.bytes.byteLength % 4).toBe(0);
        const { frames, error } = splitNetlinkFrames(batch.bytes);
        expect(error).toBeNull();
        expect(frames).toHaveLength(operations.length + 2);
        frames.forEach((f, i) => expect(f.sequence).toBe((first + i) >>> 0));
        expect([frames[0]?.type, frames.at(-1)?.type]).toEqual([NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END]);
        let offset = frames[0]!.payload.byteLength + 16;
        operations.forEach((op, i) => {
          const frame = frames[i + 1]!;
          const decoded = decodeMessage(frame);
          expect(decoded).toMatchObject({ type: op.kind === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, family: 1, table, set: op.set });
          expect(decoded.elements.map(({ key, timeoutMs }) => (timeoutMs === undefined ? { key } : { key, timeoutMs }))).toEqual(
            op.elements.map((e) => (e.timeoutMs === undefined ? { key: hex(e.key) } : { key: hex(e.key), timeoutMs: e.timeoutMs })),
          );
          const message = batch.messages[i]!;
          expect(message.sequence).toBe(frame.sequence);
          expect(message.elementSpans.map(([start]) => start)).toEqual(decoded.elements.map((e) => e.offset));
          // A span covers its element exactly: the attribute's own length field says where it ends.
          for (const [start, end] of message.elementSpans) {
            expect(new DataView(batch.bytes.buffer).getUint16(offset + start, LE)).toBe(end - start);
          }
          offset += (16 + frame.payload.byteLength + 3) & ~3;
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('decodeNetlinkAcks and SetElementReplies', () => {
  const key = (i: number) => v4(203, 0, 113, i, 443);
  const batch = encodeSetElementBatch({
    family: 1,
    table: 'T',
    firstSequence: 100,
    operations: [
      { kind: 'add', set: 'allow4', elements: [1, 2, 3].map((i) => ({ key: key(i), timeoutMs: 1000, label: `203.0.113.${i} . 443` })) },
      { kind: 'delete', set: 'allow6', elements: [{ key: new Uint8Array(20), label: ':: . 0' }] },
    ],
  });

  it('reads success and refusal answers, with the kernel text and the refused attribute', () => {
    const datagram = Buffer.concat([ack(101, 0), ack(102, 2, { text: 'No such set', offset: 40 })]);
    expect(decodeNetlinkAcks(datagram)).toEqual({
      acks: [
        { sequence: 101, errno: 0, text: null, attributeOffset: null },
        { sequence: 102, errno: 2, text: 'No such set', attributeOffset: 40 },
      ],
      error: null,
    });
  });

  it('finds the TLVs after a whole echoed message when the answer is not capped', () => {
    const length = new DataView(batch.bytes.buffer).getUint32(20, LE);
    const echoed = batch.bytes.subarray(20, 20 + length);
    const [decoded] = decodeNetlinkAcks(ack(101, 22, { echo: echoed, offset: 88 })).acks;
    expect(decoded).toEqual({ sequence: 101, errno: 22, text: null, attributeOffset: 88 });
  });

  it('is complete once every message is answered, ignores answers to other batches and repeats, and names the element the kernel pointed at', () => {
    const replies = new SetElementReplies(batch);
    const third = batch.messages[0]!.elementSpans[2]!;
    replies.take(decodeNetlinkAcks(Buffer.concat([ack(7, 1), ack(101, 22, { offset: third[0] + 4 })])).acks);
    expect(replies.complete).toBe(false);
    expect(replies.unanswered.map((m) => m.sequence)).toEqual([102]);
    replies.take(decodeNetlinkAcks(Buffer.concat([ack(102, 2, { offset: 24 }), ack(102, 0)])).acks);
    expect(replies.complete).toBe(true);
    expect(replies.refusals.map((r) => [r.errno, r.message?.set, r.element?.label ?? null])).toEqual([
      [22, 'allow4', '203.0.113.3 . 443'],
      [2, 'allow6', null], // the offset names the set attribute, not an element
    ]);
  });

  it('a refusal of the batch itself counts, without an element', () => {
    const replies = new SetElementReplies(batch);
    replies.take([{ sequence: 100, errno: 1, text: null, attributeOffset: null }]);
    expect(replies.batchRefused).toBe(true);
    expect(replies.complete).toBe(false);
    expect(replies.refusals).toEqual([{ errno: 1, text: null, message: null, element: null }]);
  });

  it('property: any bytes decode to acks and an error, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (noise, framed) => {
        const bytes = framed ? Buffer.concat([ack(1, 0), noise]) : noise;
        const result = decodeNetlinkAcks(bytes);
        expect(Array.isArray(result.acks)).toBe(true);
        new SetElementReplies(batch).take(result.acks);
      }),
      { numRuns: 500 },
    );
  });
});
