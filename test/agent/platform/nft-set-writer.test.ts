// nftables set updates over netlink against the real kernel, in a namespace of their own
// (run through a child: see test/helpers/in-netns.ts); the sets are read back with the nft CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns } from '../../../src/agent/platform/index.js';
import { runInNetns, srcModule, testNetnsName } from '../../helpers/in-netns.js';

const ns = testNetnsName('nftset');

interface Failure {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** Runs `body` with `writer` (an open NftSetWriter), `key(ip, port)`, `list(table, set)` (nft -j), `failure(f)`. */
function withWriter<T>(body: string): Promise<T> {
  return runInNetns<T>(
    ns,
    `import { execFileSync } from 'node:child_process';
     import { NftSetWriter, concatKey } from ${srcModule('agent/platform/index.ts')};
     import { parseIp } from ${srcModule('policy/index.ts')};
     export default async function () {
       const nft = (script: string) => execFileSync('nft', ['-f', '-'], { input: script });
       const list = (table: string, set: string) => JSON.parse(execFileSync('nft', ['-j', 'list', 'set', 'inet', table, set], { encoding: 'utf8' }));
       const key = (ip: string, port: number) => concatKey(parseIp(ip)!.bytes, port);
       const failure = (f: () => void) => { try { f(); return null; } catch (e) { const x = e as { code?: string; message: string; details?: unknown }; return { code: x.code, message: x.message, details: x.details }; } };
       const writer = NftSetWriter.open();
       try { ${body} } finally { writer.close(); }
     }`,
  );
}

/** `[address, port, timeout s]` of each element in `nft -j list set` output. */
function elements(listing: unknown): [string, number, number | undefined][] {
  const entries = (listing as { nftables: { set?: { elem?: { elem: { val: { concat: [string, number] }; timeout?: number } }[] } }[] }).nftables;
  const set = entries.find((e) => e.set !== undefined)?.set;
  return (set?.elem ?? []).map((e) => [...e.elem.val.concat, e.elem.timeout]);
}

/** A fresh table each time (the namespace is shared by the tests). */
const TABLE = `
  table inet T
  delete table inet T
  add table inet T
  add set inet T allow4 { type ipv4_addr . inet_service; flags timeout; }
  add set inet T allow6 { type ipv6_addr . inet_service; flags timeout; }
`;

describe('NftSetWriter', () => {
  beforeAll(() => createNetns(ns));
  afterAll(() => deleteNetns(ns));

  it('adds IPv4 and IPv6 elements with their timeouts in one batch', async () => {
    const result = await withWriter<{ four: unknown; six: unknown }>(`
      nft(\`${TABLE}\`);
      writer.apply('T', [
        { kind: 'add', set: 'allow4', elements: [
          { key: key('203.0.113.5', 443), timeoutMs: 60_000, label: 'a' },
          { key: key('198.51.100.7', 53), timeoutMs: 3_600_000, label: 'b' },
        ] },
        { kind: 'add', set: 'allow6', elements: [{ key: key('2001:db8::1', 8443), timeoutMs: 120_000, label: 'c' }] },
      ]);
      return { four: list('T', 'allow4'), six: list('T', 'allow6') };
    `);
    expect(elements(result.four).sort()).toEqual([
      ['198.51.100.7', 53, 3600],
      ['203.0.113.5', 443, 60],
    ]);
    expect(elements(result.six)).toEqual([['2001:db8::1', 8443, 120]]);
  });

  // Kernels before 6.11 keep an existing element's timeout on a plain add (6.18 updates it): the batch works on both.
  it('add, delete, add anew in one batch replaces a timeout, and succeeds when the element has already gone', async () => {
    const result = await withWriter<{ replaced: unknown; gone: unknown }>(`
      nft(\`${TABLE}\`);
      const refresh = (ip: string, timeoutMs: number) => {
        const k = key(ip, 443);
        writer.apply('T', [
          { kind: 'add', set: 'allow4', elements: [{ key: k, label: ip }] },
          { kind: 'delete', set: 'allow4', elements: [{ key: k, label: ip }] },
          { kind: 'add', set: 'allow4', elements: [{ key: k, timeoutMs, label: ip }] },
        ]);
      };
      writer.apply('T', [{ kind: 'add', set: 'allow4', elements: [{ key: key('203.0.113.9', 443), timeoutMs: 5_000, label: 'x' }] }]);
      refresh('203.0.113.9', 600_000);
      const replaced = list('T', 'allow4');
      refresh('203.0.113.10', 60_000);
      return { replaced, gone: list('T', 'allow4') };
    `);
    expect(elements(result.replaced)).toEqual([['203.0.113.9', 443, 600]]);
    expect(elements(result.gone).sort()).toEqual([
      ['203.0.113.10', 443, 60],
      ['203.0.113.9', 443, 600],
    ]);
  });

  it('an unknown table is RW_NFT_FAILED with ENOENT, naming the table, set and element', async () => {
    const error = await withWriter<Failure>(`
      return failure(() => writer.apply('no_such_table', [{ kind: 'add', set: 'allow4', elements: [{ key: key('203.0.113.5', 443), timeoutMs: 1000, label: '203.0.113.5 . 443' }] }]));
    `);
    expect(error.code).toBe('RW_NFT_FAILED');
    expect(error.message).toBe('nftables refused to add 203.0.113.5 . 443 to set allow4 of table inet no_such_table: ENOENT (no such file or directory)');
    expect(error.details).toMatchObject({ table: 'no_such_table', set: 'allow4', errno: 'ENOENT' });
  });

  it('a refused element is named, the batch applies none of it, and the writer keeps working', async () => {
    const result = await withWriter<{ error: Failure; after: unknown; later: unknown }>(`
      nft(\`${TABLE}\`);
      const error = failure(() => writer.apply('T', [
        { kind: 'add', set: 'allow4', elements: [
          { key: key('203.0.113.1', 443), timeoutMs: 1000, label: '203.0.113.1 . 443' },
          { key: key('2001:db8::2', 443), timeoutMs: 1000, label: 'an IPv6 key in an IPv4 set' },
        ] },
      ]));
      const after = list('T', 'allow4');
      writer.apply('T', [{ kind: 'add', set: 'allow4', elements: [{ key: key('203.0.113.2', 443), timeoutMs: 60_000, label: 'ok' }] }]);
      return { error, after, later: list('T', 'allow4') };
    `);
    expect(result.error.code).toBe('RW_NFT_FAILED');
    expect(result.error.message).toMatch(/^nftables refused to add an IPv6 key in an IPv4 set to set allow4 of table inet T: EINVAL/);
    expect(elements(result.after)).toEqual([]);
    expect(elements(result.later)).toEqual([['203.0.113.2', 443, 60]]);
  });

  it('deleting an element that is not there is refused (ENOENT), which is why a refresh adds first', async () => {
    const error = await withWriter<Failure>(`
      nft(\`${TABLE}\`);
      return failure(() => writer.apply('T', [{ kind: 'delete', set: 'allow4', elements: [{ key: key('203.0.113.3', 80), label: '203.0.113.3 . 80' }] }]));
    `);
    expect(error.message).toBe('nftables refused to delete 203.0.113.3 . 80 from set allow4 of table inet T: ENOENT (no such file or directory)');
  });
});
