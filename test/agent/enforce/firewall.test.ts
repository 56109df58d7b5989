// Firewall admissions against the real kernel, in a namespace of their own (through a child:
// see test/helpers/in-netns.ts): the run's whole table installed, addresses admitted as the
// DNS proxy does, and the allow sets read back with the nft CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RulesetConfig } from '../../../src/agent/enforce/ruleset.js';
import { createNetns, deleteNetns } from '../../../src/agent/platform/index.js';
import { runInNetns, srcModule, testNetnsName } from '../../helpers/in-netns.js';

const ns = testNetnsName('fw');

const config: RulesetConfig = {
  table: 'runwall_fwtest',
  mode: 'block',
  scope: { kind: 'exec', jobInterface: 'rwh-0000beef', jobNet4: '100.64.0.0/30', jobNet6: 'fd52:756e:7761:0::/64' },
  nflogGroup: 20_001,
  resolvers: [{ family: 4, address: '100.64.0.1' }],
  staticAllows: [],
  blocked: [],
};

interface Failure {
  code: string;
  message: string;
}

/**
 * Runs `body` with `firewall` (installed, grace 10 s, admissions `via`; broken-netlink: its socket
 * cannot be opened), `nftCli(args)`,
 * `list(set)` (nft -j list set) and `failure(f)`.
 */
function withFirewall<T>(body: string, via: 'netlink' | 'libnftables' | 'broken-netlink' = 'netlink'): Promise<T> {
  const options =
    via === 'broken-netlink'
      ? `{ graceSeconds: 10, openSetWriter: () => { throw new RunwallError('RW_PLATFORM_MISSING', 'cannot open a netfilter netlink socket: EPROTONOSUPPORT'); } }`
      : `{ graceSeconds: 10, admitVia: '${via}' }`;
  return runInNetns<T>(
    ns,
    `import { execFileSync } from 'node:child_process';
     import { Nftables } from ${srcModule('agent/platform/index.ts')};
     import { Firewall } from ${srcModule('agent/enforce/firewall.ts')};
     import { RunwallError } from ${srcModule('protocol/index.ts')};
     export default async function (config: unknown) {
       const nft = Nftables.open();
       const firewall = new Firewall(nft, config as never, ${options});
       const nftCli = (...args: string[]) => execFileSync('nft', args, { encoding: 'utf8' });
       const list = (set: string) => JSON.parse(nftCli('-j', 'list', 'set', 'inet', '${config.table}', set));
       const failure = (f: () => void) => { try { f(); return null; } catch (e) { return { code: (e as { code?: string }).code, message: (e as Error).message }; } };
       await firewall.install();
       try { ${body} } finally { firewall.remove(); nft.close(); }
     }`,
    config,
  );
}

/** `[address, port, timeout s]` of each element in `nft -j list set` output, sorted. */
function elements(listing: unknown): [string, number, number | undefined][] {
  const entries = (listing as { nftables: { set?: { elem?: { elem: { val: { concat: [string, number] }; timeout?: number } }[] } }[] }).nftables;
  const set = entries.find((e) => e.set !== undefined)?.set;
  return (set?.elem ?? []).map((e): [string, number, number | undefined] => [...e.elem.val.concat, e.elem.timeout]).sort();
}

const admitBoth = `
  firewall.admit([
    { family: 4, ip: '203.0.113.5', port: 443, ttlSeconds: 60 },
    { family: 4, ip: '203.0.113.5', port: 80, ttlSeconds: 60 },
    { family: 6, ip: '2001:db8::5', port: 443, ttlSeconds: 300 },
  ]);
  return { fallback: firewall.admissionFallback, four: list('allow4'), six: list('allow6') };
`;

describe('Firewall admissions', () => {
  beforeAll(() => createNetns(ns));
  afterAll(() => deleteNetns(ns));

  it('admits IPv4 and IPv6 addresses over netlink with TTL + grace as their timeout', async () => {
    const result = await withFirewall<{ fallback: unknown; four: unknown; six: unknown }>(admitBoth);
    expect(result.fallback).toBeNull();
    expect(elements(result.four)).toEqual([
      ['203.0.113.5', 443, 70],
      ['203.0.113.5', 80, 70],
    ]);
    expect(elements(result.six)).toEqual([['2001:db8::5', 443, 310]]);
  });

  it('leaves the sets as libnftables does for the same answers', async () => {
    const viaText = await withFirewall<{ four: unknown; six: unknown }>(admitBoth, 'libnftables');
    const viaNetlink = await withFirewall<{ four: unknown; six: unknown }>(admitBoth);
    expect(elements(viaNetlink.four)).toEqual(elements(viaText.four));
    expect(elements(viaNetlink.six)).toEqual(elements(viaText.six));
  });

  it('when the netlink socket cannot be opened, admissions go through libnftables and the firewall says why', async () => {
    const result = await withFirewall<{ fallback: unknown; four: unknown; six: unknown }>(admitBoth, 'broken-netlink');
    expect(result.fallback).toEqual({
      code: 'RW_PLATFORM_MISSING',
      message: 'nftables set updates go through libnftables: cannot open a netfilter netlink socket: EPROTONOSUPPORT',
    });
    expect(elements(result.four)).toEqual([
      ['203.0.113.5', 443, 70],
      ['203.0.113.5', 80, 70],
    ]);
    expect(elements(result.six)).toEqual([['2001:db8::5', 443, 310]]);
  });

  it('a longer TTL refreshes a shorter timeout; a shorter one never cuts it', async () => {
    const result = await withFirewall<{ short: unknown; long: unknown; again: unknown }>(`
      const admit = (ttlSeconds: number) => firewall.admit([{ family: 4, ip: '198.51.100.7', port: 443, ttlSeconds }]);
      admit(5);
      const short = list('allow4');
      admit(600);
      const long = list('allow4');
      admit(5);
      return { short, long, again: list('allow4') };
    `);
    expect(elements(result.short)).toEqual([['198.51.100.7', 443, 15]]);
    expect(elements(result.long)).toEqual([['198.51.100.7', 443, 610]]);
    expect(elements(result.again)).toEqual([['198.51.100.7', 443, 610]]);
  });

  it('a table removed behind its back is RW_NFT_FAILED; after restore the same answer is admitted', async () => {
    const result = await withFirewall<{ error: Failure; after: unknown }>(`
      nftCli('delete', 'table', 'inet', '${config.table}');
      const answer = [{ family: 4 as const, ip: '203.0.113.77', port: 443, ttlSeconds: 60 }];
      const error = failure(() => firewall.admit(answer));
      await firewall.restore();
      firewall.admit(answer);
      return { error, after: list('allow4') };
    `);
    expect(result.error.code).toBe('RW_NFT_FAILED');
    expect(result.error.message).toBe(
      `nftables refused to add 203.0.113.77 . 443 to set allow4 of table inet ${config.table}: ENOENT (no such file or directory)`,
    );
    expect(elements(result.after)).toEqual([['203.0.113.77', 443, 70]]);
  });

  it('a refused admission is not counted as done: once the set is back, the next answer admits it', async () => {
    const result = await withFirewall<{ error: Failure; after: unknown }>(`
      nftCli('delete', 'table', 'inet', '${config.table}');
      const answer = [{ family: 4 as const, ip: '203.0.113.78', port: 443, ttlSeconds: 60 }];
      const error = failure(() => firewall.admit(answer));
      // Someone else puts an equivalent set back (not firewall.restore(), which would re-add from its own records).
      nftCli('add', 'table', 'inet', '${config.table}');
      nftCli('add', 'set', 'inet', '${config.table}', 'allow4', '{ type ipv4_addr . inet_service; flags timeout; }');
      firewall.admit(answer);
      return { error, after: list('allow4') };
    `);
    expect(result.error.code).toBe('RW_NFT_FAILED');
    expect(elements(result.after)).toEqual([['203.0.113.78', 443, 70]]);
  });

  it('an address that is not of its family is RW_NFT_FAILED, and nothing of the answer is admitted', async () => {
    const result = await withFirewall<{ error: Failure; after: unknown }>(`
      const error = failure(() => firewall.admit([
        { family: 4, ip: '203.0.113.8', port: 443, ttlSeconds: 60 },
        { family: 4, ip: '2001:db8::8', port: 443, ttlSeconds: 60 },
      ]));
      return { error, after: list('allow4') };
    `);
    expect(result.error).toEqual({ code: 'RW_NFT_FAILED', message: 'cannot admit "2001:db8::8": not an IPv4 address' });
    expect(elements(result.after)).toEqual([]);
  });
});
