// withFields is `{ ...base, ...fields }` for per-event objects, without Node 20's one-hidden-class-per-object cost.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { EventPipeline } from '../../src/agent/pipeline/event-pipeline.js';
import { withFields } from '../../src/agent/with-fields.js';
import type { RunEvent } from '../../src/protocol/index.js';

/** V8's own answer to "do these objects share a hidden class" (natives syntax, enabled only for this check). */
function sameShape(): (a: object, b: object) => boolean {
  setFlagsFromString('--allow-natives-syntax');
  // A Function made after the flag is set may use natives syntax; the signature is ours.
  const check = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  setFlagsFromString('--no-allow-natives-syntax');
  return check;
}

describe('withFields', () => {
  it('makes what the spread makes: the base fields in order, the new ones after, a later field winning', () => {
    const base = { kind: 'dns', time: 't', count: 1 } as const;
    const made = withFields(base, { count: 3, seq: 7 });
    expect(made).toEqual({ kind: 'dns', time: 't', count: 3, seq: 7 });
    expect(Object.keys(made)).toEqual(['kind', 'time', 'count', 'seq']);
    expect(JSON.stringify(made)).toBe(JSON.stringify({ ...base, count: 3, seq: 7 }));
    expect(base).toEqual({ kind: 'dns', time: 't', count: 1 });
  });

  it('gives objects of one shape one hidden class however many are made (the spread made one each)', () => {
    const same = sameShape();
    const made = Array.from({ length: 200 }, (_, i) => withFields({ kind: 'dns', client: `c${i}` }, { seq: i }));
    expect(made.every((object) => same(object, made[0]!))).toBe(true);
  });

  it('sequenced events of one kind share a hidden class', () => {
    const same = sameShape();
    const pipeline = new EventPipeline();
    const seen: RunEvent[] = [];
    pipeline.subscribe((event) => seen.push(event));
    for (let i = 0; i < 200; i++) pipeline.emit({ kind: 'agent', time: `t${i}`, action: 'sensor', message: `m${i}` });
    expect(seen.every((event) => same(event, seen[0]!))).toBe(true);
  });
});
