// libnftables in-process, in a namespace of its own (run through a child: see test/helpers/in-netns.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nftables, createNetns, deleteNetns } from '../../../src/agent/platform/index.js';
import { isRunwallError } from '../../../src/protocol/index.js';
import { runInNetns, srcModule, testNetnsName } from '../../helpers/in-netns.js';

const ns = testNetnsName('nft');

/** Runs `body` (statements using `nft`, an open Nftables) in the test namespace; it returns JSON. */
function withNft<T>(body: string): Promise<T> {
  return runInNetns<T>(
    ns,
    `import { Nftables } from ${srcModule('agent/platform/index.ts')};
     export default async function () {
       const nft = Nftables.open();
       const failure = (f: () => void) => { try { f(); return null; } catch (e) { return { code: (e as { code?: string }).code, message: (e as Error).message }; } };
       try { ${body} } finally { nft.close(); }
     }`,
  );
}

/** The concatenated values of a set's elements in `nft -j list set` output. */
function elements(listing: unknown): unknown[] {
  const entries = (listing as { nftables: { set?: { elem?: { elem: { val: { concat: unknown[] } } }[] } }[] }).nftables;
  const set = entries.find((e) => e.set !== undefined)?.set;
  return (set?.elem ?? []).map((e) => e.elem.val.concat);
}

describe('Nftables', () => {
  beforeAll(() => createNetns(ns));
  afterAll(() => deleteNetns(ns));

  it('creates an inet table with a timeout set, adds elements, and reads them back as JSON', async () => {
    const listing = await withNft(`
      nft.run(\`
        add table inet rw_t
        add set inet rw_t allow4 { type ipv4_addr . inet_service; flags timeout; }
        add element inet rw_t allow4 { 203.0.113.5 . 443 timeout 60s, 198.51.100.7 . 53 timeout 1h }
      \`);
      return nft.runJson('list set inet rw_t allow4');
    `);
    expect(elements(listing)).toEqual(expect.arrayContaining([['203.0.113.5', 443], ['198.51.100.7', 53]]));
    expect(elements(listing)).toHaveLength(2);
    const set = (listing as { nftables: { set?: { flags?: string[] } }[] }).nftables.find((e) => e.set)?.set;
    expect(set?.flags).toContain('timeout');
  });

  it('a syntax error is RW_NFT_FAILED quoting nft, and the batch changes nothing', async () => {
    const result = await withNft<{ error: { code: string; message: string }; after: unknown }>(`
      nft.run('add table inet rw_s\\nadd set inet rw_s allow4 { type ipv4_addr; }');
      const error = failure(() => nft.run('add element inet rw_s allow4 { 203.0.113.9 }\\nadd elemnt inet rw_s allow4 { 203.0.113.10 }'));
      return { error, after: nft.runJson('list set inet rw_s allow4') };
    `);
    expect(result.error.code).toBe('RW_NFT_FAILED');
    // nft's own words (for buffer input nft 1.0.6 echoes the batch's first line under them, not the faulty one).
    expect(result.error.message).toMatch(/Error: syntax error, unexpected inet/);
    expect(elements(result.after)).toEqual([]);
  });

  it('a batch the kernel refuses part-way applies none of it (atomic, as nft -f)', async () => {
    const result = await withNft<{ error: { code: string; message: string }; after: unknown }>(`
      nft.run('add table inet rw_a\\nadd set inet rw_a allow4 { type ipv4_addr . inet_service; }');
      // The add is valid; deleting an element that is not there is refused by the kernel at commit.
      const error = failure(() => nft.run('add element inet rw_a allow4 { 203.0.113.9 . 443 }\\ndelete element inet rw_a allow4 { 203.0.113.10 . 80 }'));
      return { error, after: nft.runJson('list set inet rw_a allow4') };
    `);
    expect(result.error.code).toBe('RW_NFT_FAILED');
    expect(result.error.message).toMatch(/No such file or directory/);
    expect(elements(result.after)).toEqual([]);
  });

  it('keeps working after a refused batch, and output is read per command', async () => {
    const result = await withNft<{ first: unknown; second: unknown }>(`
      nft.run('add table inet rw_k\\nadd set inet rw_k s { type ipv4_addr; }');
      failure(() => nft.run('add element inet rw_k s { not-an-address!! }'));
      nft.run('add element inet rw_k s { 203.0.113.1 }');
      const first = nft.runJson('list set inet rw_k s');
      nft.run('add element inet rw_k s { 203.0.113.2 }');
      return { first, second: nft.runJson('list set inet rw_k s') };
    `);
    const values = (listing: unknown) =>
      (listing as { nftables: { set?: { elem?: string[] } }[] }).nftables.find((e) => e.set)?.set?.elem ?? [];
    expect(values(result.first)).toEqual(['203.0.113.1']);
    expect([...values(result.second)].sort()).toEqual(['203.0.113.1', '203.0.113.2']);
  });

  it('says RW_PLATFORM_MISSING when libnftables cannot be loaded', () => {
    let caught: unknown;
    try {
      Nftables.open({ libraryPath: '/nonexistent/libnftables.so.1' });
    } catch (error) {
      caught = error;
    }
    expect(isRunwallError(caught) && caught.code).toBe('RW_PLATFORM_MISSING');
    expect((caught as Error).message).toMatch(/libnftables1/);
  });
});
