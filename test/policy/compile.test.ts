import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, parseBlockList, parseEndpointList, resolvePolicy } from '../../src/policy/index.js';
import type { EffectivePolicy, EgressMode } from '../../src/protocol/index.js';
import { domain, expectRunwallError, isDeepFrozen, label } from './helpers.js';

function policy(mode: EgressMode, allowed: string, blockList = ''): EffectivePolicy {
  return resolvePolicy({
    flags: { egressPolicy: mode, allowedEndpoints: parseEndpointList(allowed, '--allowed-endpoints') },
    blockList: parseBlockList(blockList, 'global.txt'),
    defaults: { dnsUpstream: '127.0.0.53' },
  });
}

const BLOCKS = [
  'evil.test exfiltration endpoint',
  '*.c2.test command and control',
  '203.0.113.66 botnet',
  '198.51.100.128/25 hostile range',
  '2001:db8:bad::/48 hostile v6',
].join('\n');
const ALLOWED = '*.github.com github.com:443 example.com:8443 example.com:9000 198.51.100.0/25:443 [2001:db8:1::/64]:443 203.0.113.66:443 evil.test c2.test';

describe('compilePolicy: names', () => {
  const block = compilePolicy(policy('block', ALLOWED, BLOCKS));
  const audit = compilePolicy(policy('audit', ALLOWED, BLOCKS));

  it('an allowed name is forwarded, with the union of its ports', () => {
    expect(block.decideName('example.com')).toMatchObject({ verdict: 'allowed', forward: true, ports: [8443, 9000] });
    const api = block.decideName('API.GitHub.com.');
    expect(api).toMatchObject({ verdict: 'allowed', forward: true, ports: [443] });
    expect(api.rule).toEqual({ source: 'allowed-endpoints', entry: '*.github.com:443', explanation: 'api.github.com matches allowed endpoint *.github.com:443' });
    expect(isDeepFrozen(api)).toBe(true);
  });

  it('a wildcard matches subdomains at any depth, but not the apex (which needs its own entry)', () => {
    expect(block.decideName('a.b.c.github.com').verdict).toBe('allowed');
    expect(compilePolicy(policy('block', '*.example.org')).decideName('example.org').verdict).toBe('blocked');
    expect(block.decideName('xgithub.com').verdict).toBe('blocked');
  });

  it('block mode: any other name is not forwarded, and the rule says what to add', () => {
    const decision = block.decideName('registry.npmjs.org');
    expect(decision).toEqual({
      verdict: 'blocked',
      forward: false,
      ports: [],
      rule: {
        source: 'default-deny',
        explanation: 'registry.npmjs.org matches no allowed endpoint (block mode)',
        suggestion: 'add `registry.npmjs.org:443` to allowed-endpoints',
      },
    });
  });

  it('audit mode: any other name is forwarded and recorded as audit', () => {
    const decision = audit.decideName('registry.npmjs.org');
    expect(decision).toMatchObject({ verdict: 'audit', forward: true, ports: [] });
    expect(decision.rule.explanation).toMatch(/^registry\.npmjs\.org matches no allowed endpoint \(audit mode/);
    expect(decision.rule.suggestion).toBe('add `registry.npmjs.org:443` to allowed-endpoints');
  });

  it('the block list wins in both modes, even over an allowed endpoint, and says so', () => {
    for (const compiled of [block, audit]) {
      const decision = compiled.decideName('evil.test');
      expect(decision).toMatchObject({ verdict: 'attack-blocked', forward: false, ports: [] });
      expect(decision.rule).toEqual({
        source: 'block-list',
        entry: 'evil.test',
        reason: 'exfiltration endpoint',
        explanation: 'evil.test is on the global block list (exfiltration endpoint); an allowed-endpoints entry never overrides the block list',
      });
      expect(decision.rule.suggestion).toBeUndefined();
    }
  });

  it('a block-list domain covers every subdomain; a block-list wildcard only the subdomains', () => {
    expect(block.decideName('x.y.evil.test').rule.explanation).toMatch(/^x\.y\.evil\.test is on the global block list as evil\.test \(exfiltration endpoint\)/);
    expect(block.decideName('a.c2.test').verdict).toBe('attack-blocked');
    expect(block.decideName('c2.test').verdict).toBe('allowed');
    expect(block.decideName('notevil.test').verdict).toBe('blocked');
  });

  it('names the source of a block-list entry', () => {
    const withSource = compilePolicy(policy('audit', '', '- { entry: evil.test, reason: exfiltration endpoint, source: soc }'));
    expect(withSource.decideName('evil.test').rule.explanation).toBe(
      'evil.test is on the global block list (exfiltration endpoint, source: soc); an allowed-endpoints entry never overrides the block list',
    );
  });

  it('a non-ASCII look-alike never matches an ASCII entry', () => {
    // U+212A KELVIN SIGN lower-cases to "k" with String#toLowerCase.
    expect(compilePolicy(policy('block', 'kernel.org')).decideName('\u212Aernel.org').verdict).toBe('blocked');
  });

  it('property: a wildcard matches generated subdomains at any depth, never the apex or a sibling', () => {
    fc.assert(
      fc.property(domain, fc.array(label, { minLength: 1, maxLength: 5 }), label, (base, sub, prefix) => {
        const compiled = compilePolicy(policy('block', `*.${base}`));
        expect(compiled.decideName(`${sub.join('.')}.${base}`).verdict).toBe('allowed');
        expect(compiled.decideName(base).verdict).toBe('blocked');
        expect(compiled.decideName(`${prefix}${base}`).verdict).toBe('blocked');
        expect(compiled.decideName(`${sub.join('.')}.${prefix}${base}`).verdict).toBe('blocked');
      }),
      { numRuns: 300 },
    );
  });

  it('decides in O(labels), not O(entries): 20,000 entries cost about what 3 do', () => {
    const allowed: string[] = [];
    const blocked: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      allowed.push(`host${i}.example${i % 97}.test:${1 + (i % 60000)}`, `*.zone${i}.example.test`);
      blocked.push(`bad${i}.test reason ${i}`);
    }
    const started = performance.now();
    const big = compilePolicy(policy('block', allowed.join('\n'), blocked.join('\n')));
    const compileMs = performance.now() - started;
    const small = compilePolicy(policy('block', '*.zone1.example.test host2.example2.test', 'bad3.test reason'));

    // Unique names, so the decision cache does not hide the matching cost; the best of three runs, against noise.
    let round = 0;
    const time = (compiled: typeof big): { ms: number; allowed: number } => {
      let best = Number.POSITIVE_INFINITY;
      let allowedCount = 0;
      for (let run = 0; run < 3; run++) {
        round++;
        allowedCount = 0;
        const t0 = performance.now();
        for (let i = 0; i < 10_000; i++) {
          const name = i % 2 === 0 ? `r${round}.b.c.zone${i % 10_000}.example.test` : `r${round}.miss${i}.nowhere.test`;
          if (compiled.decideName(name).verdict === 'allowed') allowedCount++;
        }
        best = Math.min(best, performance.now() - t0);
      }
      return { ms: best, allowed: allowedCount };
    };
    const smallRun = time(small);
    const bigRun = time(big);
    expect(bigRun.allowed).toBe(5_000);
    expect(big.decideName('x.bad9999.test').verdict).toBe('attack-blocked');
    // A scan of the entries would be thousands of times slower; allow generous noise from a busy machine.
    expect(bigRun.ms).toBeLessThan(smallRun.ms * 10 + 100);
    expect(compileMs).toBeLessThan(10_000);
  });
});

describe('compilePolicy: connections', () => {
  const block = compilePolicy(policy('block', ALLOWED, BLOCKS));
  const audit = compilePolicy(policy('audit', ALLOWED, BLOCKS));

  it('an ip/cidr entry allows TCP to its addresses on its port', () => {
    expect(block.decideConnection({ ip: '198.51.100.9', port: 443, protocol: 'tcp' })).toEqual({
      verdict: 'allowed',
      rule: { source: 'allowed-endpoints', entry: '198.51.100.0/25:443', explanation: '198.51.100.9:443/tcp matches allowed endpoint 198.51.100.0/25:443' },
    });
    expect(block.decideConnection({ ip: '2001:db8:1::5', port: 443, protocol: 'tcp' }).verdict).toBe('allowed');
    expect(block.decideConnection({ ip: '::ffff:198.51.100.9', port: 443, protocol: 'tcp' }).verdict).toBe('allowed');
    expect(block.decideConnection({ ip: '198.51.100.9', port: 80, protocol: 'tcp' }).verdict).toBe('blocked');
  });

  it('a name allows TCP on the ports of its entries', () => {
    const decision = block.decideConnection({ ip: '203.0.113.5', port: 8443, protocol: 'tcp', name: 'example.com' });
    expect(decision).toEqual({
      verdict: 'allowed',
      rule: { source: 'allowed-endpoints', entry: 'example.com:8443', explanation: 'example.com (203.0.113.5:8443/tcp) matches allowed endpoint example.com:8443' },
    });
  });

  it('a name on another port is blocked, and the rule names the ports it is allowed on', () => {
    const decision = block.decideConnection({ ip: '203.0.113.5', port: 443, protocol: 'tcp', name: 'example.com' });
    expect(decision.verdict).toBe('blocked');
    expect(decision.rule.explanation).toBe('example.com is allowed only on ports 8443, 9000 (example.com:8443, example.com:9000), not 443/tcp (block mode)');
    expect(decision.rule.suggestion).toBe('add `example.com:443` to allowed-endpoints');
  });

  it('UDP (QUIC included), ICMP and other protocols are never allowed by an entry', () => {
    for (const protocol of ['udp', 'icmp', 'icmpv6', 'sctp', 'other'] as const) {
      const decision = block.decideConnection({ ip: '198.51.100.9', port: protocol.startsWith('icmp') ? null : 443, protocol, name: 'api.github.com' });
      expect(decision.verdict, protocol).toBe('blocked');
      expect(decision.rule.explanation).toMatch(/allowed-endpoints admit only TCP/);
      expect(decision.rule.suggestion).toMatch(/^allowed-endpoints admit only TCP, so /);
    }
    expect(block.decideConnection({ ip: '198.51.100.9', port: 443, protocol: 'udp' }).rule.suggestion).toMatch(/QUIC/);
    expect(audit.decideConnection({ ip: '198.51.100.9', port: 443, protocol: 'udp' }).verdict).toBe('audit');
  });

  it('an unmatched TCP flow: blocked in block mode, audit in audit mode, with the address to add', () => {
    expect(block.decideConnection({ ip: '203.0.113.77', port: 443, protocol: 'tcp' })).toEqual({
      verdict: 'blocked',
      rule: {
        source: 'default-deny',
        explanation: '203.0.113.77:443/tcp matches no allowed endpoint (block mode)',
        suggestion: 'add `203.0.113.77:443` to allowed-endpoints',
      },
    });
    const v6 = audit.decideConnection({ ip: '2001:db8:2::7', port: 8443, protocol: 'tcp' });
    expect(v6.verdict).toBe('audit');
    expect(v6.rule.suggestion).toBe('add `[2001:db8:2::7]:8443` to allowed-endpoints');
    const named = block.decideConnection({ ip: '203.0.113.77', port: 8080, protocol: 'tcp', name: 'unknown.test' });
    expect(named.rule.explanation).toBe('unknown.test (203.0.113.77:8080/tcp) matches no allowed endpoint (block mode)');
    expect(named.rule.suggestion).toBe('add `unknown.test:8080` to allowed-endpoints');
  });

  it('a block-listed address or name is attack-blocked in every mode, whatever is allowed', () => {
    for (const compiled of [block, audit]) {
      const byIp = compiled.decideConnection({ ip: '203.0.113.66', port: 443, protocol: 'tcp' });
      expect(byIp.verdict).toBe('attack-blocked');
      expect(byIp.rule).toMatchObject({ source: 'block-list', entry: '203.0.113.66', reason: 'botnet' });
      expect(byIp.rule.suggestion).toBeUndefined();
      expect(compiled.decideConnection({ ip: '198.51.100.200', port: 443, protocol: 'tcp' }).verdict).toBe('attack-blocked');
      expect(compiled.decideConnection({ ip: '::ffff:203.0.113.66', port: 443, protocol: 'tcp' }).verdict).toBe('attack-blocked');
      expect(compiled.decideConnection({ ip: '2001:db8:bad::1', port: 53, protocol: 'udp' }).verdict).toBe('attack-blocked');
      const byName = compiled.decideConnection({ ip: '198.51.100.9', port: 443, protocol: 'tcp', name: 'www.evil.test' });
      expect(byName.verdict).toBe('attack-blocked');
      expect(byName.rule.explanation).toMatch(/never overrides the block list/);
    }
  });

  it('an unparsable address is never allowed', () => {
    expect(block.decideConnection({ ip: 'not-an-ip', port: 443, protocol: 'tcp' }).verdict).toBe('blocked');
  });
});

describe('compilePolicy: answers and firewall sets', () => {
  const compiled = compilePolicy(policy('audit', ALLOWED, BLOCKS));

  it('checkAnswer finds a block-listed CNAME target or address in a forwarded answer', () => {
    expect(compiled.checkAnswer(['cdn.github.com', 'edge.c2.test'], ['198.51.100.9'])?.rule.explanation).toMatch(
      /^edge\.c2\.test \(in the DNS answer\) is on the global block list as \*\.c2\.test \(command and control\)/,
    );
    expect(compiled.checkAnswer(['cdn.github.com'], ['198.51.100.9', '203.0.113.66'])).toMatchObject({
      verdict: 'attack-blocked',
      rule: { source: 'block-list', entry: '203.0.113.66' },
    });
    expect(compiled.checkAnswer(['cdn.github.com'], ['198.51.100.9', 'garbage'])).toBeNull();
  });

  it('staticAllows lists the ip/cidr entries with their ports; blockedNetworks the ip/cidr block-list entries', () => {
    expect(compiled.staticAllows()).toEqual([
      { family: 4, cidr: '198.51.100.0/25', port: 443 },
      { family: 6, cidr: '2001:db8:1::/64', port: 443 },
      { family: 4, cidr: '203.0.113.66/32', port: 443 },
    ]);
    expect(compiled.blockedNetworks().map(({ family, cidr, entry }) => [family, cidr, entry.reason])).toEqual([
      [4, '203.0.113.66/32', 'botnet'],
      [4, '198.51.100.128/25', 'hostile range'],
      [6, '2001:db8:bad::/48', 'hostile v6'],
    ]);
    expect(isDeepFrozen(compiled.staticAllows())).toBe(true);
    expect(isDeepFrozen(compiled.blockedNetworks())).toBe(true);
    expect(compiled.mode).toBe('audit');
  });

  it('refuses a malformed policy (e.g. read from a report file) instead of deciding with it', () => {
    const good = policy('block', 'a.test');
    expectRunwallError(
      () => compilePolicy({ ...good, allowedEndpoints: [{ kind: 'domain', host: 'a..test', port: 443, text: 'a..test:443' }] }),
      'RW_ENDPOINT_INVALID',
    );
    expectRunwallError(() => compilePolicy({ ...good, blockList: [{ kind: 'domain', value: 'x', reason: 'r', text: 'x:1' }] }), 'RW_BLOCKLIST_INVALID');
    expectRunwallError(() => compilePolicy({ ...good, egressPolicy: 'deny' as EgressMode }), 'RW_MODE_INVALID');
  });
});
