import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunwallError } from '../../../src/protocol/index.js';
import { TcpFrameDecoder, encodeTcpFrame } from '../../../src/agent/dns/index.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe('TCP framing', () => {
  it('prefixes a message with its length', () => {
    expect([...encodeTcpFrame(Uint8Array.from([9, 8, 7]))]).toEqual([0, 3, 9, 8, 7]);
  });

  it('refuses to frame more than 65,535 bytes', () => {
    expect(() => encodeTcpFrame(new Uint8Array(65_536))).toThrow(RunwallError);
  });

  it('returns copies: a reused chunk does not change frames already returned or held', () => {
    const decoder = new TcpFrameDecoder();
    const chunk = Uint8Array.from([0, 2, 1, 2, 0, 3, 5]);
    const [frame] = decoder.push(chunk);
    chunk.fill(0xff);
    expect([...frame!]).toEqual([1, 2]);
    expect(decoder.push(Uint8Array.from([6, 7])).map((f) => [...f])).toEqual([[5, 6, 7]]);
  });

  it('holds at most one partial frame, and refuses frames above its limit before buffering them', () => {
    const decoder = new TcpFrameDecoder(512);
    expect(decoder.push(Uint8Array.from([0x01, 0xff, 1, 2, 3]))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(5);
    const oversized = new TcpFrameDecoder(512);
    expect(() => oversized.push(Uint8Array.from([0x02, 0x01]))).toThrow(RunwallError);
    expect(oversized.bufferedBytes).toBe(0);
  });

  it('reassembles any chunking of a stream of frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, cutSeeds) => {
          const stream = concat(messages.map(encodeTcpFrame));
          const cuts = [...new Set(cutSeeds.map((seed) => seed % (stream.length + 1)))].sort((a, b) => a - b);
          const decoder = new TcpFrameDecoder();
          const out: Uint8Array[] = [];
          let from = 0;
          for (const cut of [...cuts, stream.length]) {
            out.push(...decoder.push(stream.subarray(from, cut)));
            from = cut;
          }
          expect(out.map((frame) => [...frame])).toEqual(messages.map((message) => [...message]));
          expect(decoder.bufferedBytes).toBe(0);
        },
      ),
    );
  });
});
