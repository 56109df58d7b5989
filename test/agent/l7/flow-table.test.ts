// The pure flow table: a ClientHello split, reordered or retransmitted across TCP segments is
// put back together; every queued packet gets exactly one answer; everything is bounded.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowTable, type FlowSegment, type FlowStep } from '../../../src/agent/l7/flow-table.js';
import { clientHelloRecords } from '../../helpers/tls-client-hello-encoder.js';

const KEY = '100.64.0.2 40000 198.51.100.10 443';
const ISN = 0xfffff000; // wraps around 2^32 within the hello: sequence arithmetic must be modular

let nextId = 1;
function segment(offset: number, payload: Uint8Array, extra: Partial<FlowSegment> = {}): FlowSegment {
  return { key: KEY, id: nextId++, sequence: (ISN + 1 + offset) >>> 0, syn: false, fin: false, rst: false, payload, ...extra };
}
const ack = (extra: Partial<FlowSegment> = {}) => segment(0, new Uint8Array(0), extra);

function judged(steps: readonly FlowStep[]): Extract<FlowStep, { action: 'judge' }> | undefined {
  return steps.find((step): step is Extract<FlowStep, { action: 'judge' }> => step.action === 'judge');
}

describe('FlowTable', () => {
  it('lets segments without data go on undecided and judges the flow once its hello is whole', () => {
    const table = new FlowTable();
    const hello = clientHelloRecords({ serverName: 'allowed.test' });
    const first = ack();
    expect(table.add(first, 0)).toEqual([{ action: 'undecided', ids: [first.id] }]);
    const head = segment(0, hello.subarray(0, 40));
    expect(table.add(head, 1)).toEqual([]); // held: no verdict yet, the server has not seen it
    const tail = segment(40, hello.subarray(40));
    const step = judged(table.add(tail, 2));
    expect(step?.start).toMatchObject({ kind: 'tls', serverName: 'allowed.test' });
    expect(step?.ids).toEqual([head.id, tail.id]);
    expect(step?.base).toBe((ISN + 1) >>> 0);
  });

  it('remembers the verdict for packets of the flow still in flight, and forgets it for a new connection on the tuple', () => {
    const table = new FlowTable();
    const step = judged(table.add(segment(0, new TextEncoder().encode('GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n')), 0));
    expect(step?.start).toMatchObject({ kind: 'http', host: 'evil.test' });
    table.settle(KEY, 'deny', step!.base, 0);
    const late = segment(40, Uint8Array.of(1));
    expect(table.add(late, 5)).toEqual([{ action: 'judged', verdict: 'deny', ids: [late.id] }]);
    const reopened = segment(0, new Uint8Array(0), { syn: true, sequence: 12345 });
    expect(table.add(reopened, 6)).toEqual([{ action: 'undecided', ids: [reopened.id] }]);
  });

  it('judges a new flow on a reused tuple afresh, even when the SYN was not seen (only a flow\'s first packets are queued)', () => {
    const table = new FlowTable();
    const allowed = judged(table.add(segment(0, clientHelloRecords({ serverName: 'allowed.test' })), 0));
    table.settle(KEY, 'pass', allowed!.base, 0);
    // The next connection on the tuple starts at a fresh ISN: 32 MiB on is far outside any flow's first 32 packets.
    const fresh = (ISN + 1 + 2 ** 25) >>> 0;
    const ackOfNew = segment(0, new Uint8Array(0), { sequence: fresh });
    expect(table.add(ackOfNew, 1)).toEqual([{ action: 'undecided', ids: [ackOfNew.id] }]);
    const fronted = judged(table.add(segment(0, clientHelloRecords({ serverName: 'evil.test' }), { sequence: fresh }), 2));
    expect(fronted?.start).toMatchObject({ kind: 'tls', serverName: 'evil.test' });
  });

  it('a tuple whose old flow sent no data starts over at the new flow\'s first data, not from the old start', () => {
    const table = new FlowTable();
    table.add(ack(), 0); // an old connection that closed without FIN reaching us
    const fresh = (ISN + 1 + 2 ** 28) >>> 0;
    const step = judged(table.add(segment(0, clientHelloRecords({ serverName: 'evil.test' }), { sequence: fresh }), 1));
    expect(step?.start).toMatchObject({ kind: 'tls', serverName: 'evil.test' });
    expect(step?.base).toBe(fresh);
  });

  it('reads a hello that rides on the SYN (TCP Fast Open)', () => {
    const table = new FlowTable();
    const hello = clientHelloRecords({ serverName: 'allowed.test' });
    const syn = segment(-1, hello, { syn: true });
    expect(judged(table.add(syn, 0))?.start).toMatchObject({ kind: 'tls', serverName: 'allowed.test' });
  });

  it('judges a changed retransmission as a desynchronisation attempt, without a name', () => {
    const table = new FlowTable();
    const hello = clientHelloRecords({ serverName: 'allowed.test' });
    table.add(segment(0, hello.subarray(0, 30)), 0);
    const forged = hello.subarray(0, 30).slice();
    forged[20] = (forged[20] ?? 0) ^ 0xff;
    const step = judged(table.add(segment(0, forged), 1));
    expect(step?.start).toMatchObject({ kind: 'tls', serverName: null, problem: { code: 'RW_TLS_MALFORMED' } });
    expect(step?.ids).toHaveLength(2);
  });

  it('judges a start that stalls after holdMs on what arrived, and one that closes at once', () => {
    const table = new FlowTable({ holdMs: 1000 });
    const hello = clientHelloRecords({ serverName: 'allowed.test' });
    const head = segment(0, hello.subarray(0, 20));
    table.add(head, 100);
    expect(table.nextDeadline()).toBe(1100);
    expect(table.expire(1099)).toEqual([]);
    expect(judged(table.expire(1100))).toMatchObject({ ids: [head.id], start: { kind: 'tls', serverName: null, problem: { code: 'RW_TLS_MALFORMED' } } });
    expect(table.pending).toBe(0);

    const other = new FlowTable();
    const start = segment(0, new TextEncoder().encode('GET / HT'));
    other.add(start, 0);
    const fin = ack({ fin: true, sequence: (ISN + 9) >>> 0 });
    expect(judged(other.add(fin, 1))?.ids).toEqual([start.id, fin.id]);
  });

  it('judges a flow at its packet bound, and evicts the oldest flow when full, answering what it held', () => {
    const table = new FlowTable({ maxHeldPackets: 3 });
    const tlsStart = [22, 3, 1];
    const steps = [0, 1, 2].flatMap((i) => table.add(segment(i, Uint8Array.of(tlsStart[i]!)), i));
    expect(judged(steps)?.ids).toHaveLength(3);

    const small = new FlowTable({ maxFlows: 2 });
    const held = { ...segment(0, Uint8Array.of(0x16)), key: 'a' };
    small.add(held, 0);
    small.add({ ...ack(), key: 'b' }, 1);
    const evicted = small.add({ ...ack(), key: 'c' }, 2);
    expect(judged(evicted)).toMatchObject({ key: 'a', ids: [held.id] });
    expect(small.pending).toBe(2);
  });

  it('drain() answers every held packet', () => {
    const table = new FlowTable();
    const held = [0, 1].map((i) => ({ ...segment(0, Uint8Array.of(22, 3)), key: `k${i}` }));
    for (const s of held) table.add(s, 0);
    expect(table.drain().flatMap((step) => step.ids).sort()).toEqual(held.map((s) => s.id).sort());
  });
});

describe('FlowTable properties', () => {
  const name = fc.stringMatching(/^[a-z]{1,12}(\.[a-z]{1,12}){1,3}$/);

  it('any split, order and duplication of the hello gives its SNI, and every packet one answer', () => {
    fc.assert(
      fc.property(
        name,
        fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (serverName, cuts, order, duplicates) => {
          const hello = clientHelloRecords({ serverName, recordSizes: [60] });
          const pieces: { offset: number; bytes: Uint8Array }[] = [];
          let at = 0;
          for (const size of cuts) {
            if (at >= hello.length) break;
            pieces.push({ offset: at, bytes: hello.subarray(at, at + size) });
            at += size;
          }
          if (at < hello.length) pieces.push({ offset: at, bytes: hello.subarray(at) });
          for (const d of duplicates) pieces.push(pieces[d % pieces.length]!);
          // Shuffle, but keep the first segment first: reordering before it moves the assumed start.
          const rest = pieces.slice(1);
          for (const [i, o] of (rest.length > 1 ? order : []).entries()) {
            const a = i % Math.max(1, rest.length);
            const b = o % Math.max(1, rest.length);
            [rest[a], rest[b]] = [rest[b]!, rest[a]!];
          }
          const table = new FlowTable({ maxHeldPackets: 64 });
          const sent: number[] = [];
          const answered: number[] = [];
          let start: unknown;
          for (const piece of [pieces[0]!, ...rest]) {
            const s = segment(piece.offset, piece.bytes);
            sent.push(s.id);
            for (const step of table.add(s, 0)) {
              answered.push(...step.ids);
              if (step.action === 'judge') {
                start = step.start;
                table.settle(step.key, 'pass', step.base, 0);
              }
            }
          }
          for (const step of table.drain()) answered.push(...step.ids);
          expect(start).toMatchObject({ kind: 'tls', serverName });
          expect([...answered].sort((a, b) => a - b)).toEqual([...sent].sort((a, b) => a - b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('on arbitrary segments, every packet gets exactly one answer and memory stays bounded', () => {
    const arbitrary = fc.record({
      key: fc.constantFrom('a', 'b', 'c', 'd'),
      offset: fc.integer({ min: -5, max: 40_000 }),
      payload: fc.uint8Array({ maxLength: 80 }),
      syn: fc.boolean(),
      fin: fc.boolean(),
      rst: fc.boolean(),
      at: fc.nat({ max: 5000 }),
    });
    fc.assert(
      fc.property(fc.array(arbitrary, { maxLength: 120 }), (items) => {
        const table = new FlowTable({ maxFlows: 3, maxHeldPackets: 8, holdMs: 100 });
        const sent: number[] = [];
        const answered: number[] = [];
        let now = 0;
        for (const item of items) {
          now += item.at % 50;
          const s = { ...segment(item.offset, item.payload, { syn: item.syn, fin: item.fin, rst: item.rst }), key: item.key };
          sent.push(s.id);
          for (const step of [...table.add(s, now), ...table.expire(now)]) {
            answered.push(...step.ids);
            if (step.action === 'judge') table.settle(step.key, 'deny', step.base, now);
          }
          expect(table.pending).toBeLessThanOrEqual(3);
        }
        for (const step of table.drain()) answered.push(...step.ids);
        expect([...answered].sort((a, b) => a - b)).toEqual([...sent].sort((a, b) => a - b));
      }),
      { numRuns: 500 },
    );
  });
});
