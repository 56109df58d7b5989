// The pure fanotify decoder: hand-built buffers (test/helpers/fanotify-encoder.ts) and properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_MODIFY,
  FAN_ONDIR,
  FAN_RENAME,
  decodeFanotifyEvents,
  handleKey,
} from '../../../src/agent/platform/fanotify-event.js';
import { concat, encodeFanotifyEvent, encodeOverflow, expectedKey, type EncodedEvent, type EncodedHandle } from '../../helpers/fanotify-encoder.js';

const fsid = Uint8Array.from([3, 0xb8, 0x7c, 0xa1, 2, 0x2f, 0x53, 0x25]);
const handle = (n: number): EncodedHandle => ({ fsid, type: 1, bytes: Uint8Array.from([n, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]) });

describe('decodeFanotifyEvents', () => {
  it('decodes a created, written and closed file: merged mask, pid, directory, name and the file itself', () => {
    const bytes = encodeFanotifyEvent({ mask: FAN_CREATE | FAN_MODIFY | FAN_CLOSE_WRITE, pid: 4242, entry: { dir: handle(1), name: 'index.ts' }, object: handle(2) });
    const { events, errors, overflows } = decodeFanotifyEvents(bytes);
    expect(errors).toEqual([]);
    expect(overflows).toBe(0);
    expect(events).toEqual([
      { mask: FAN_CREATE | FAN_MODIFY | FAN_CLOSE_WRITE, pid: 4242, entry: { dir: expectedKey(handle(1)), name: 'index.ts' }, from: null, to: null, object: expectedKey(handle(2)) },
    ]);
  });

  it('decodes a rename with its old and new place, and a directory flag', () => {
    const bytes = encodeFanotifyEvent({ mask: FAN_RENAME | FAN_ONDIR, pid: 7, from: { dir: handle(1), name: 'src' }, to: { dir: handle(3), name: 'src.old' }, object: handle(9) });
    const [event] = decodeFanotifyEvents(bytes).events;
    expect(event).toMatchObject({ mask: FAN_RENAME | FAN_ONDIR, from: { dir: expectedKey(handle(1)), name: 'src' }, to: { dir: expectedKey(handle(3)), name: 'src.old' } });
  });

  it('counts queue overflows apart from events', () => {
    const ok = encodeFanotifyEvent({ mask: FAN_CLOSE_WRITE, pid: 1, entry: { dir: handle(1), name: 'a' }, object: handle(2) });
    const decoded = decodeFanotifyEvents(concat(ok, encodeOverflow(), ok));
    expect(decoded.overflows).toBe(1);
    expect(decoded.events).toHaveLength(2);
  });

  it('decodes names that are not ASCII', () => {
    const bytes = encodeFanotifyEvent({ mask: FAN_CREATE, pid: 1, entry: { dir: handle(1), name: 'résumé-日本.txt' } });
    expect(decodeFanotifyEvents(bytes).events[0]?.entry?.name).toBe('résumé-日本.txt');
  });

  it('skips an event of another metadata version and keeps decoding', () => {
    const good = encodeFanotifyEvent({ mask: FAN_CREATE, pid: 1, entry: { dir: handle(1), name: 'a' } });
    const decoded = decodeFanotifyEvents(concat(encodeFanotifyEvent({ mask: FAN_CREATE, pid: 1, version: 2 }), good));
    expect(decoded.events).toHaveLength(1);
    expect(decoded.errors[0]?.message).toMatch(/version 2/);
  });

  it('drops an event whose name is not one path segment, or whose rename lacks a side', () => {
    const slash = encodeFanotifyEvent({ mask: FAN_CREATE, pid: 1, entry: { dir: handle(1), name: '../etc/passwd' } });
    const oneSided = encodeFanotifyEvent({ mask: FAN_RENAME, pid: 1, from: { dir: handle(1), name: 'a' } });
    const decoded = decodeFanotifyEvents(concat(slash, oneSided));
    expect(decoded.events).toEqual([]);
    expect(decoded.errors.map((e) => e.message)).toEqual([expect.stringMatching(/not a single path segment/), expect.stringMatching(/rename event lacks/)]);
  });

  it('stops at a length that overruns the buffer, keeping what came before', () => {
    const good = encodeFanotifyEvent({ mask: FAN_CREATE, pid: 1, entry: { dir: handle(1), name: 'a' } });
    const broken = good.slice();
    new DataView(broken.buffer).setUint32(0, 4096, true);
    const decoded = decodeFanotifyEvents(concat(good, broken));
    expect(decoded.events).toHaveLength(1);
    expect(decoded.errors).toHaveLength(1);
    expect(decoded.errors[0]?.code).toBe('RW_FANOTIFY_MALFORMED');
  });

  it('handleKey names a handle the same way the decoder does', () => {
    expect(handleKey(fsid, 1, handle(5).bytes)).toBe(expectedKey(handle(5)));
  });
});

const handleArb: fc.Arbitrary<EncodedHandle> = fc.record({
  fsid: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  type: fc.integer({ min: -2, max: 255 }),
  bytes: fc.uint8Array({ minLength: 0, maxLength: 128 }),
});
const nameArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('/') && !s.includes('\0') && s !== '.' && s !== '..');
const placeArb = fc.record({ dir: handleArb, name: nameArb });
const eventArb: fc.Arbitrary<EncodedEvent> = fc.oneof(
  fc.record({ mask: fc.constantFrom(FAN_CREATE, FAN_MODIFY | FAN_CLOSE_WRITE, FAN_CREATE | FAN_ONDIR), pid: fc.integer({ min: 1, max: 2 ** 22 }), entry: placeArb, object: handleArb }),
  fc.record({ mask: fc.constant(FAN_RENAME), pid: fc.integer({ min: 1, max: 2 ** 22 }), from: placeArb, to: placeArb, object: handleArb }),
);

describe('decodeFanotifyEvents properties', () => {
  it('round-trips any run of well-formed events', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 12 }), (input) => {
        const decoded = decodeFanotifyEvents(concat(...input.map(encodeFanotifyEvent)));
        expect(decoded.errors).toEqual([]);
        expect(decoded.events).toEqual(
          input.map((e) => ({
            mask: e.mask,
            pid: e.pid,
            entry: e.entry ? { dir: expectedKey(e.entry.dir), name: e.entry.name } : null,
            from: e.from ? { dir: expectedKey(e.from.dir), name: e.from.name } : null,
            to: e.to ? { dir: expectedKey(e.to.dir), name: e.to.name } : null,
            object: e.object ? expectedKey(e.object) : null,
          })),
        );
      }),
    );
  });

  it('never throws and never reads past the buffer, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 400 }), fc.uint8Array({ maxLength: 64 }), (input, cut, noise) => {
        const whole = concat(...input.map(encodeFanotifyEvent));
        const mangled = concat(whole.subarray(0, Math.min(cut, whole.length)), noise);
        const decoded = decodeFanotifyEvents(mangled);
        expect(decoded.events.length + decoded.errors.length + decoded.overflows).toBeLessThanOrEqual(Math.ceil(mangled.length / 24) + 1);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expect(() => decodeFanotifyEvents(bytes)).not.toThrow();
      }),
    );
  });

  it('two different handles never share a key', () => {
    fc.assert(
      fc.property(handleArb, handleArb, (a, b) => {
        const same = Buffer.from(a.fsid).equals(Buffer.from(b.fsid)) && a.type === b.type && Buffer.from(a.bytes).equals(Buffer.from(b.bytes));
        expect(handleKey(a.fsid, a.type, a.bytes) === handleKey(b.fsid, b.type, b.bytes)).toBe(same);
      }),
    );
  });
});
