import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../src/policy/index.js';
import { expectRunwallError, isDeepFrozen } from './helpers.js';

describe('parsePolicyFile', () => {
  it("reads the GitHub Action's input names", () => {
    const settings = parsePolicyFile(
      [
        'egress-policy: block',
        'allowed-endpoints:',
        '  - github.com:443',
        '  - "*.githubusercontent.com"',
        'dns-upstream: 198.51.100.53:5353',
        'disable-file-monitoring: true',
        'disable-sudo: false',
        'disable-sudo-and-containers: "true"',
        "disable-telemetry: 'false'",
        'block-list:',
        '  - entry: evil.test',
        '    reason: exfiltration endpoint',
        '    source: soc',
      ].join('\n'),
      'runwall.yml',
    );
    expect(settings).toEqual({
      egressPolicy: 'block',
      allowedEndpoints: [
        { kind: 'domain', host: 'github.com', port: 443, text: 'github.com:443' },
        { kind: 'wildcard', host: 'githubusercontent.com', port: 443, text: '*.githubusercontent.com:443' },
      ],
      dnsUpstream: '198.51.100.53:5353',
      disableFileMonitoring: true,
      disableSudo: false,
      disableSudoAndContainers: true,
      disableTelemetry: false,
      blockList: [{ kind: 'domain', value: 'evil.test', reason: 'exfiltration endpoint', source: 'soc', text: 'evil.test' }],
    });
    expect(isDeepFrozen(settings)).toBe(true);
  });

  it('has only the keys the file set', () => {
    expect(parsePolicyFile('egress-policy: audit\n', 'p.yml')).toEqual({ egressPolicy: 'audit' });
  });

  it('takes allowed-endpoints as a multi-line or space-separated string, as the Action passes it', () => {
    const block = parsePolicyFile('allowed-endpoints: |\n  github.com:443\n  api.github.com:443 # comment\n\n  registry.npmjs.org\n', 'p.yml');
    expect(block.allowedEndpoints?.map((e) => e.text)).toEqual(['github.com:443', 'api.github.com:443', 'registry.npmjs.org:443']);
    const spaced = parsePolicyFile('allowed-endpoints: github.com:443 api.github.com:443\n', 'p.yml');
    expect(spaced.allowedEndpoints?.map((e) => e.text)).toEqual(['github.com:443', 'api.github.com:443']);
  });

  it('an empty allowed-endpoints means nothing is allowed', () => {
    expect(parsePolicyFile('allowed-endpoints:\n', 'p.yml').allowedEndpoints).toEqual([]);
  });

  it('an unknown key is RW_POLICY_INVALID naming it and listing the known keys', () => {
    const error = expectRunwallError(() => parsePolicyFile('egress-policy: block\nallowed-endpoint: x.test\n', 'p.yml'), 'RW_POLICY_INVALID');
    expect(error.message).toBe(
      "p.yml:2: unknown key 'allowed-endpoint'; known keys: egress-policy, allowed-endpoints, dns-upstream, disable-file-monitoring, allowed-source-writers, disable-sudo, disable-sudo-and-containers, disable-telemetry, block-list",
    );
  });

  it('a wrong type names the key and its line', () => {
    const cases: Array<[string, RegExp]> = [
      ['disable-sudo: yes\n', /^p\.yml:1: disable-sudo must be true or false, not "yes"/],
      ['egress-policy: block\ndisable-telemetry: 1\n', /^p\.yml:2: disable-telemetry must be true or false, not number 1/],
      ['allowed-endpoints: 443\n', /^p\.yml:1: allowed-endpoints must be a list of entries or a text/],
      ['allowed-endpoints: { a: b }\n', /allowed-endpoints must be .* not a mapping/],
      ['allowed-endpoints: [a.test, 1]\n', /allowed-endpoints must be/],
      ['dns-upstream: [a]\n', /^p\.yml:1: dns-upstream must be an IP address/],
      ['block-list: evil.test\n', /^p\.yml:1: block-list must be a list/],
    ];
    for (const [text, message] of cases) {
      const error = expectRunwallError(() => parsePolicyFile(text, 'p.yml'), 'RW_POLICY_INVALID');
      expect(error.message, text).toMatch(message);
    }
  });

  it('a bad value inside a key keeps its own code and names the line of the item', () => {
    expect(expectRunwallError(() => parsePolicyFile('egress-policy: Block\n', 'p.yml'), 'RW_MODE_INVALID').message).toBe(
      'p.yml:1: egress-policy: must be "audit" or "block", not "Block"',
    );
    expect(
      expectRunwallError(() => parsePolicyFile('allowed-endpoints:\n  - a.test\n  - b.test:0\n', 'p.yml'), 'RW_ENDPOINT_INVALID').message,
    ).toBe("p.yml:3: allowed-endpoints: entry 'b.test:0' has the port 0; a port must be 1-65535");
    expect(expectRunwallError(() => parsePolicyFile('dns-upstream: dns.test\n', 'p.yml'), 'RW_UPSTREAM_INVALID').message).toMatch(/^p\.yml:1: dns-upstream: /);
    expect(
      expectRunwallError(() => parsePolicyFile('block-list:\n  - entry: a.test\n    reason: x\n  - entry: b.test\n', 'p.yml'), 'RW_BLOCKLIST_INVALID').message,
    ).toBe("p.yml:4: block-list: entry 'b.test' has no reason; every block-list entry says why it is there");
  });

  it('not a mapping, empty, or a YAML syntax error is RW_POLICY_INVALID with line info', () => {
    expect(expectRunwallError(() => parsePolicyFile('- egress-policy: block\n', 'p.yml'), 'RW_POLICY_INVALID').message).toMatch(/^p\.yml:1: is not a mapping/);
    expect(expectRunwallError(() => parsePolicyFile('just text\n', 'p.yml'), 'RW_POLICY_INVALID').message).toMatch(/^p\.yml:1: is not a mapping/);
    expect(expectRunwallError(() => parsePolicyFile('# nothing\n', 'p.yml'), 'RW_POLICY_INVALID').message).toMatch(/^p\.yml: is empty/);
    const syntax = expectRunwallError(() => parsePolicyFile('egress-policy: block\nallowed-endpoints: [a.test\n', 'p.yml'), 'RW_POLICY_INVALID');
    expect(syntax.message).toMatch(/^p\.yml:\d+:\d+: not valid YAML: /);
    expect(syntax.details).toHaveProperty('line');
    expect(expectRunwallError(() => parsePolicyFile('egress-policy: block\negress-policy: audit\n', 'p.yml'), 'RW_POLICY_INVALID').message).toMatch(
      /^p\.yml:2:1: not valid YAML: Map keys must be unique/,
    );
  });

  it('does not expand a YAML alias bomb', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${new Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`);
    bomb.push('allowed-endpoints: *i');
    const started = Date.now();
    expect(() => parsePolicyFile(bomb.join('\n'), 'p.yml')).toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
