// The generated ruleset is accepted by the real nft, in both modes and both placements, and admissions
// refresh an element's timeout instead of keeping a shorter one.
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admitCommands, admitOperations, buildLockdownRuleset, buildRuleset, type RulesetConfig } from '../../../src/agent/enforce/ruleset.js';

/** Loads text into nft inside a throw-away network namespace; returns nft's status, stderr and the listing. */
function loadInFreshNamespace(text: string, then = ''): { status: number | null; stderr: string; listing: string } {
  const script = `nft -f - && ${then || 'true'} && nft list ruleset`;
  const result = spawnSync('unshare', ['--net', '--mount', 'sh', '-c', `mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; ${script}`], {
    input: text,
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: result.status, stderr: result.stderr, listing: result.stdout };
}

const base: RulesetConfig = {
  table: 'runwall_test',
  mode: 'block',
  scope: { kind: 'exec', jobInterface: 'rwh-0000aaaa', jobNet4: '100.64.0.0/30', jobNet6: 'fd52:756e:7761:0::/64' },
  nflogGroup: 20_000,
  resolvers: [
    { family: 4, address: '100.64.0.1' },
    { family: 6, address: 'fd52:756e:7761:0::1' },
  ],
  staticAllows: [
    { family: 4, cidr: '198.51.100.0/24', port: 443 },
    { family: 6, cidr: '2001:db8::/32', port: 8443 },
  ],
  blocked: [
    { family: 4, cidr: '203.0.113.66' },
    { family: 6, cidr: '2001:db8:66::/48' },
  ],
};

describe('nftables ruleset', () => {
  for (const mode of ['block', 'audit'] as const) {
    for (const scope of [base.scope, { kind: 'agent' as const, agentCgroup: '/', agentCgroupLevel: 0 }]) {
      it(`loads in ${mode} mode for ${scope.kind}, and loading it again replaces it`, () => {
        const text = buildRuleset({ ...base, mode, scope });
        const loaded = loadInFreshNamespace(text + '\n' + text);
        expect(loaded.stderr).toBe('');
        expect(loaded.status).toBe(0);
        expect(loaded.listing.match(/table inet runwall_test/g)).toHaveLength(1);
        expect(loaded.listing).toContain(mode === 'block' ? 'reject with tcp reset' : 'prefix "rw:u"');
        expect(loaded.listing).toContain('198.51.100.0/24 . 443');
      });
    }
  }

  it('loads with any set of valid networks', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
    fc.assert(
      fc.property(fc.uniqueArray(v4, { maxLength: 20 }), fc.uniqueArray(v4, { maxLength: 20 }), (allows, blocks) => {
        const text = buildRuleset({
          ...base,
          staticAllows: allows.map((cidr) => ({ family: 4, cidr, port: 443 })),
          blocked: blocks.map((cidr) => ({ family: 4, cidr })),
        });
        expect(loadInFreshNamespace(text).status).toBe(0);
      }),
      { numRuns: 15 },
    );
  });

  it('a refreshed admission takes the new, longer timeout', () => {
    const first = admitCommands('runwall_test', [{ family: 4, ip: '198.51.100.10', port: 443, timeoutSeconds: 5, refresh: false }]);
    const refresh = admitCommands('runwall_test', [{ family: 4, ip: '198.51.100.10', port: 443, timeoutSeconds: 600, refresh: true }]);
    const loaded = loadInFreshNamespace(buildRuleset(base) + '\n' + first, `printf '%s\\n' '${refresh.replace(/'/g, "'\\''")}' | nft -f -`);
    expect(loaded.status).toBe(0);
    expect(loaded.listing).toMatch(/198\.51\.100\.10 \. 443 timeout 10m/);
  });

  it('the lockdown ruleset loads and lets only loopback out', () => {
    const loaded = loadInFreshNamespace(buildLockdownRuleset('runwall_agent', 19_999));
    expect(loaded.status).toBe(0);
    expect(loaded.listing).toMatch(/oifname "lo" accept/);
  });
});

describe('admitOperations', () => {
  const hex = (key: Uint8Array) => Buffer.from(key).toString('hex');

  it('adds fresh elements with their timeout in whole seconds, per family set', () => {
    const operations = admitOperations([
      { family: 4, ip: '198.51.100.10', port: 443, timeoutSeconds: 70, refresh: false },
      { family: 6, ip: '2001:db8::1', port: 80, timeoutSeconds: 9.2, refresh: false },
    ]);
    expect(operations.map((o) => [o.kind, o.set, o.elements.map((e) => [hex(e.key), e.timeoutMs, e.label])])).toEqual([
      ['add', 'allow4', [['c633640a01bb0000', 70_000, '198.51.100.10 . 443']]],
      ['add', 'allow6', [['20010db8000000000000000000000001' + '00500000', 10_000, '2001:db8::1 . 80']]],
    ]);
  });

  it('a refresh is the same add, delete, add anew as the text batch, in one batch', () => {
    const operations = admitOperations([
      { family: 4, ip: '198.51.100.10', port: 443, timeoutSeconds: 600, refresh: true },
      { family: 4, ip: '198.51.100.11', port: 443, timeoutSeconds: 600, refresh: false },
    ]);
    expect(operations.map((o) => [o.kind, o.elements.map((e) => [e.label, e.timeoutMs ?? null])])).toEqual([
      ['add', [['198.51.100.10 . 443', null]]],
      ['delete', [['198.51.100.10 . 443', null]]],
      ['add', [['198.51.100.10 . 443', 600_000], ['198.51.100.11 . 443', 600_000]]],
    ]);
  });

  it('refuses an address that is not of its family (RW_NFT_FAILED), as nft would refuse the text', () => {
    expect(() => admitOperations([{ family: 6, ip: '198.51.100.10', port: 443, timeoutSeconds: 1, refresh: false }])).toThrow(
      expect.objectContaining({ code: 'RW_NFT_FAILED' }),
    );
  });
});
