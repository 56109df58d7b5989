import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBlockList } from '../../src/policy/index.js';
import { RunwallError } from '../../src/protocol/index.js';
import { expectRunwallError, isDeepFrozen } from './helpers.js';

describe('parseBlockList: text form', () => {
  it('reads ENTRY REASON lines, skipping comments and blank lines', () => {
    const list = parseBlockList(
      '# global block list\n\nevil.test   exfiltration endpoint\n*.C2.Example  command and control\n203.0.113.0/24 botnet range\n2001:DB8::66 known bad\n[2001:db8:1::/48] bad net\n',
      'global.txt',
    );
    expect(list).toEqual([
      { kind: 'domain', value: 'evil.test', reason: 'exfiltration endpoint', text: 'evil.test' },
      { kind: 'wildcard', value: 'c2.example', reason: 'command and control', text: '*.c2.example' },
      { kind: 'cidr', value: '203.0.113.0/24', reason: 'botnet range', text: '203.0.113.0/24' },
      { kind: 'ip', value: '2001:db8::66', reason: 'known bad', text: '2001:db8::66' },
      { kind: 'cidr', value: '2001:db8:1::/48', reason: 'bad net', text: '2001:db8:1::/48' },
    ]);
    expect(isDeepFrozen(list)).toBe(true);
  });

  it('an empty file is an empty list', () => {
    expect(parseBlockList('', 'x')).toEqual([]);
    expect(parseBlockList('# only comments\n\n', 'x')).toEqual([]);
  });

  it('drops an exact repeat', () => {
    expect(parseBlockList('evil.test bad\nEVIL.test. bad\n', 'x')).toHaveLength(1);
  });

  it('names the line and entry of a missing reason, a bad entry, a port, or a repeat with another reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['ok.test fine\nevil.test\n', /^global\.txt:2: entry 'evil\.test' has no reason/],
      ['bad..test reason\n', /^global\.txt:1: entry 'bad\.\.test' has an empty label/],
      ['evil.test:443 has a port\n', /^global\.txt:1: entry 'evil\.test:443' has a port; a block list blocks whole hosts/],
      ['[2001:db8::1]:443 port\n', /has a port/],
      ['203.0.113.7/24 host bits\n', /did you mean 203\.0\.113\.0\/24/],
      ['https://evil.test/x url\n', /is a URL/],
      ['evil.test one reason\n# c\nevil.test another reason\n', /^global\.txt:3: entry 'evil\.test' is listed again with another reason \('another reason'; on line 1: 'one reason'\)/],
    ];
    for (const [text, message] of cases) {
      const error = expectRunwallError(() => parseBlockList(text, 'global.txt'), 'RW_BLOCKLIST_INVALID');
      expect(error.message).toMatch(message);
    }
  });
});

describe('parseBlockList: YAML / JSON form', () => {
  it('reads a list of { entry, reason, source }', () => {
    const list = parseBlockList('- entry: evil.test\n  reason: exfiltration endpoint\n  source: soc\n- { entry: 203.0.113.66, reason: botnet }\n', 'global.yml');
    expect(list).toEqual([
      { kind: 'domain', value: 'evil.test', reason: 'exfiltration endpoint', source: 'soc', text: 'evil.test' },
      { kind: 'ip', value: '203.0.113.66', reason: 'botnet', text: '203.0.113.66' },
    ]);
  });

  it('reads a mapping { entries: [...] }, in YAML or JSON', () => {
    expect(parseBlockList('# feed\nentries:\n  - entry: "*.evil.test"\n    reason: c2\n', 'a.yml').map((e) => e.text)).toEqual(['*.evil.test']);
    expect(parseBlockList('{"entries": [{"entry": "evil.test", "reason": "x"}]}', 'a.json').map((e) => e.text)).toEqual(['evil.test']);
    expect(parseBlockList('[{"entry": "evil.test", "reason": "x"}]', 'a.json').map((e) => e.text)).toEqual(['evil.test']);
  });

  it('names the line of the item that is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['- entry: ok.test\n  reason: fine\n- entry: evil.test\n', /^b\.yml:3: entry 'evil\.test' has no reason/],
      ['- entry: ok.test\n  reason: ""\n', /^b\.yml:1: entry 'ok\.test' has no reason/],
      ['- entry: evil.test:8080\n  reason: x\n', /^b\.yml:1: entry 'evil\.test:8080' has a port/],
      ['- reason: x\n', /^b\.yml:1: item has no 'entry'/],
      ['- entry: a.test\n  reason: x\n  why: y\n', /unknown key 'why'/],
      ['- just-a-string\n', /expected a mapping/],
      ['- entry: 5\n  reason: x\n', /'entry' is number 5/],
      ['entries: 3\n', /is not a list/],
      ['feed: x\nentries: []\n', /unknown key 'feed'/],
      ['- entry: a.test\n  reason: [\n', /^b\.yml:\d+: is not valid YAML/],
      ['- { entry: evil.test, reason: a }\n- { entry: evil.test, reason: b }\n', /^b\.yml:2: entry 'evil\.test' is listed again with another reason/],
    ];
    for (const [text, message] of cases) {
      const error = expectRunwallError(() => parseBlockList(text, 'b.yml'), 'RW_BLOCKLIST_INVALID');
      expect(error.message, text).toMatch(message);
    }
  });

  it('property: arbitrary text never throws anything but RW_BLOCKLIST_INVALID', () => {
    const noisy = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: fc.constantFrom(...'-[]{}:, \nentryreason#ab.1*'.split('')), maxLength: 60 }),
    );
    fc.assert(
      fc.property(noisy, (text) => {
        try {
          for (const entry of parseBlockList(text, 'x')) expect(entry.reason.length).toBeGreaterThan(0);
        } catch (error) {
          expect(error).toBeInstanceOf(RunwallError);
          expect((error as RunwallError).code).toBe('RW_BLOCKLIST_INVALID');
        }
      }),
      { numRuns: 1000 },
    );
  });
});
