// egress-policy, dns-upstream, and merging flags / policy file / defaults into the effective policy.
import { describe, expect, it } from 'vitest';
import { parseBlockList, parseDnsUpstream, parseEgressMode, parseEndpointList, parsePolicyFile, resolvePolicy } from '../../src/policy/index.js';
import { expectRunwallError, isDeepFrozen } from './helpers.js';

describe('parseEgressMode', () => {
  it('accepts exactly "audit" and "block"', () => {
    expect(parseEgressMode('audit', '--egress-policy')).toBe('audit');
    expect(parseEgressMode('block', '--egress-policy')).toBe('block');
  });

  it('anything else is RW_MODE_INVALID naming where and the value, never a default', () => {
    for (const value of ['Block', 'AUDIT', ' block', 'deny', '', null, undefined, true, 1, ['block']]) {
      const error = expectRunwallError(() => parseEgressMode(value, '--egress-policy'), 'RW_MODE_INVALID');
      expect(error.message).toMatch(/^--egress-policy: must be "audit" or "block", not /);
    }
    expect(expectRunwallError(() => parseEgressMode('Block', 'w'), 'RW_MODE_INVALID').message).toBe('w: must be "audit" or "block", not "Block"');
  });
});

describe('parseDnsUpstream', () => {
  it('gives canonical ip:port, port 53 by default, IPv6 in brackets', () => {
    expect(parseDnsUpstream('198.51.100.53', 'x')).toBe('198.51.100.53:53');
    expect(parseDnsUpstream('198.51.100.53:5353', 'x')).toBe('198.51.100.53:5353');
    expect(parseDnsUpstream('2001:DB8:0::53', 'x')).toBe('[2001:db8::53]:53');
    expect(parseDnsUpstream('[2001:db8::53]:5353', 'x')).toBe('[2001:db8::53]:5353');
    expect(parseDnsUpstream('[::ffff:127.0.0.53]:53', 'x')).toBe('127.0.0.53:53');
  });

  it('refuses names, bad ports and broken brackets with RW_UPSTREAM_INVALID', () => {
    for (const bad of ['dns.example', '', '198.51.100.53:0', '198.51.100.53:65536', '198.51.100.53:', '[2001:db8::53', '[198.51.100.53]:53', '[2001:db8::53]x', '1.2.3.4.5']) {
      const error = expectRunwallError(() => parseDnsUpstream(bad, '--dns-upstream'), 'RW_UPSTREAM_INVALID');
      expect(error.message).toMatch(/^--dns-upstream: DNS upstream '/);
    }
  });
});

describe('resolvePolicy', () => {
  const file = {
    path: 'runwall.yml',
    settings: parsePolicyFile(
      'egress-policy: audit\nallowed-endpoints: [file.test]\ndns-upstream: 198.51.100.53\ndisable-file-monitoring: true\nblock-list:\n  - { entry: evil.test, reason: from the file }\n',
      'runwall.yml',
    ),
  };

  it('uses defaults when nothing is set: block mode, nothing allowed', () => {
    const policy = resolvePolicy({ flags: {}, defaults: { dnsUpstream: '127.0.0.53' } });
    expect(policy).toEqual({
      egressPolicy: 'block',
      allowedEndpoints: [],
      blockList: [],
      dnsUpstream: '127.0.0.53:53',
      disableFileMonitoring: false,
      allowedSourceWriters: [],
      origins: { egressPolicy: 'default', allowedEndpoints: 'default', dnsUpstream: 'default', disableFileMonitoring: 'default', allowedSourceWriters: 'default' },
    });
    expect(isDeepFrozen(policy)).toBe(true);
  });

  it('the policy file wins over defaults, flags win over the file, and origins say which', () => {
    const policy = resolvePolicy({
      flags: { egressPolicy: 'block', allowedEndpoints: parseEndpointList('flag.test:8443', '--allowed-endpoints') },
      file,
      defaults: { dnsUpstream: '127.0.0.53' },
    });
    expect(policy.egressPolicy).toBe('block');
    expect(policy.allowedEndpoints.map((e) => e.text)).toEqual(['flag.test:8443']);
    expect(policy.dnsUpstream).toBe('198.51.100.53:53');
    expect(policy.disableFileMonitoring).toBe(true);
    expect(policy.origins).toEqual({
      egressPolicy: 'flag',
      allowedEndpoints: 'flag',
      dnsUpstream: 'policy-file:runwall.yml',
      disableFileMonitoring: 'policy-file:runwall.yml',
      allowedSourceWriters: 'default',
    });
    expect(isDeepFrozen(policy)).toBe(true);
  });

  it("merges the file's inline block list with the given one, without duplicates", () => {
    const given = parseBlockList('evil.test exfiltration endpoint\n203.0.113.66 botnet\n', 'global.txt');
    const policy = resolvePolicy({ flags: {}, file, blockList: given, defaults: { dnsUpstream: '127.0.0.53' } });
    expect(policy.blockList.map((e) => `${e.text} ${e.reason}`)).toEqual(['evil.test from the file', '203.0.113.66 botnet']);
  });

  it('refuses a broken default upstream rather than running with it', () => {
    expectRunwallError(() => resolvePolicy({ flags: {}, defaults: { dnsUpstream: 'resolver' } }), 'RW_UPSTREAM_INVALID');
  });
});
