import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseEndpointList } from '../../src/policy/index.js';
import { RunwallError } from '../../src/protocol/index.js';
import { domain, expectRunwallError, fullIpv6, ipv4, ipv4Bytes, ipv6Bytes, isDeepFrozen, maskBytes, port } from './helpers.js';

const texts = (input: string | string[]) => parseEndpointList(input, '--allowed-endpoints').map((e) => e.text);

describe('parseEndpoint', () => {
  it('gives each kind of entry its canonical text, port 443 by default', () => {
    expect(parseEndpoint('Example.COM.', 'x')).toEqual({ kind: 'domain', host: 'example.com', port: 443, text: 'example.com:443' });
    expect(parseEndpoint('*.example.com', 'x')).toEqual({ kind: 'wildcard', host: 'example.com', port: 443, text: '*.example.com:443' });
    expect(parseEndpoint('198.51.100.7:80', 'x')).toEqual({ kind: 'ip', host: '198.51.100.7', port: 80, text: '198.51.100.7:80' });
    expect(parseEndpoint('[2001:DB8:0::1]:443', 'x')).toEqual({ kind: 'ip', host: '2001:db8::1', port: 443, text: '[2001:db8::1]:443' });
    expect(parseEndpoint('2001:db8::1', 'x').text).toBe('[2001:db8::1]:443');
    expect(parseEndpoint('198.51.100.0/24:8080', 'x')).toEqual({ kind: 'cidr', host: '198.51.100.0/24', port: 8080, text: '198.51.100.0/24:8080' });
    expect(parseEndpoint('[2001:db8::/32]:443', 'x').text).toBe('[2001:db8::/32]:443');
    expect(parseEndpoint('2001:db8::/32', 'x').text).toBe('[2001:db8::/32]:443');
    expect(parseEndpoint('_dmarc.example.com', 'x').text).toBe('_dmarc.example.com:443');
  });

  it('reads an IPv4-mapped IPv6 entry as the IPv4 address or network it is on the wire', () => {
    expect(parseEndpoint('[::ffff:198.51.100.7]:22', 'x').text).toBe('198.51.100.7:22');
    expect(parseEndpoint('[::ffff:198.51.100.0/120]:443', 'x').text).toBe('198.51.100.0/24:443');
  });

  it('rejects every malformed entry with RW_ENDPOINT_INVALID quoting it and saying what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['https://x', /is a URL.*'x:443'/],
      ['http://x/path', /is a URL.*'x:80'/],
      ['host:', /no port/],
      ['host:0', /port 0; a port must be 1-65535/],
      ['host:99999', /port 99999; a port must be 1-65535/],
      ['host:abc', /'abc', which is not a decimal number/],
      ['host:-1', /not a decimal number/],
      ['host:0443', /leading zero/],
      ['a..b', /empty label/],
      ['.example.com', /empty label/],
      ['[::1', /without a closing '\]'/],
      ['[::1]x', /after '\]'/],
      ['[198.51.100.1]:443', /only for IPv6/],
      ['1.2.3.4/33', /prefix length 33/],
      ['198.51.100.7/24', /host bits set.*did you mean 198\.51\.100\.0\/24\?/],
      ['[2001:db8::1/32]:443', /host bits set.*did you mean 2001:db8::\/32\?/],
      ['1.2.3.256', /not an IPv4 address/],
      ['1.2.3', /not an IPv4 address/],
      ['a*.b.com', /whole first label/],
      ['*', /bare '\*'/],
      ['*.', /nothing after/],
      ['*.*.example.com', /more than one/],
      ['-a.example.com', /starts or ends with '-'/],
      ['a-.example.com', /starts or ends with '-'/],
      [`${'a'.repeat(64)}.com`, /at most 63/],
      [`${'abcdefghi.'.repeat(26)}com`, /at most 253/],
      ['exa mple.com', /whitespace/],
      ['a.com,b.com', /not commas/],
      ['example.com/path', /has a path/],
      ['bücher.de', /punycode/],
      ['2001:db8::1:443:x', /not an IPv6 address.*brackets/],
    ];
    for (const [entry, problem] of cases) {
      const error = expectRunwallError(() => parseEndpoint(entry, '--allowed-endpoints'), 'RW_ENDPOINT_INVALID');
      expect(error.message, entry).toContain(`--allowed-endpoints: entry '${entry.trim()}'`);
      expect(error.message, entry).toMatch(problem);
    }
  });

  it('never yields port 0, whatever the entry', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (text) => {
        try {
          expect(parseEndpoint(text, 'x').port).toBeGreaterThan(0);
        } catch (error) {
          expect(error).toBeInstanceOf(RunwallError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseEndpointList', () => {
  it('separates entries by any whitespace, new lines included, with # comments', () => {
    const text = '\n  github.com:443   api.github.com\n\n# the registry\n\tregistry.npmjs.org:443 # npm\r\n*.example.com\n';
    expect(texts(text)).toEqual(['github.com:443', 'api.github.com:443', 'registry.npmjs.org:443', '*.example.com:443']);
  });

  it('takes a list of texts (a YAML list) the same way', () => {
    expect(texts(['github.com:443', 'a.test b.test:8443'])).toEqual(['github.com:443', 'a.test:443', 'b.test:8443']);
  });

  it('drops duplicates (after canonicalisation), keeping input order, and freezes the result', () => {
    const list = parseEndpointList('b.test a.test:443 B.TEST. [2001:db8:0:0::1] [2001:db8::1]:443', 'x');
    expect(list.map((e) => e.text)).toEqual(['b.test:443', 'a.test:443', '[2001:db8::1]:443']);
    expect(isDeepFrozen(list)).toBe(true);
  });

  it('an empty or comment-only text is an empty list', () => {
    expect(texts('')).toEqual([]);
    expect(texts('  # nothing here\n\n')).toEqual([]);
  });

  it('names the line of a bad entry in a multi-line text', () => {
    const error = expectRunwallError(() => parseEndpointList('a.test\nb.test\nc.test:0\n', 'policy.yml: allowed-endpoints'), 'RW_ENDPOINT_INVALID');
    expect(error.message).toBe("policy.yml: allowed-endpoints: entry 'c.test:0' (line 3) has the port 0; a port must be 1-65535");
    expect(error.details).toMatchObject({ entry: 'c.test:0', line: 3 });
  });

  it('property: arbitrary text never throws anything but RW_ENDPOINT_INVALID', () => {
    const noisy = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.string({ unit: fc.constantFrom(...'ab1.:[]/*#-_ \n0f9'.split('')), maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
    );
    fc.assert(
      fc.property(noisy, (text) => {
        try {
          const list = parseEndpointList(text, 'x');
          for (const endpoint of list) expect(endpoint.port).toBeGreaterThanOrEqual(1);
        } catch (error) {
          expect(error).toBeInstanceOf(RunwallError);
          expect((error as RunwallError).code).toBe('RW_ENDPOINT_INVALID');
        }
      }),
      { numRuns: 2000 },
    );
  });

  const validEntry = fc.oneof(
    fc.tuple(domain, fc.option(port)).map(([d, p]) => (p === null ? d : `${d}:${p}`)),
    fc.tuple(domain, fc.option(port)).map(([d, p]) => (p === null ? `*.${d}` : `*.${d}:${p}`)),
    fc.tuple(domain, fc.boolean()).map(([d, upper]) => (upper ? d.toUpperCase() : `${d}.`)),
    fc.tuple(ipv4, fc.option(port)).map(([ip, p]) => (p === null ? ip : `${ip}:${p}`)),
    fc.tuple(ipv4Bytes, fc.integer({ min: 0, max: 32 }), port).map(([b, len, p]) => `${maskBytes(b, len).join('.')}/${len}:${p}`),
    fc.tuple(ipv6Bytes, fc.option(port)).map(([b, p]) => (p === null ? fullIpv6(b, true) : `[${fullIpv6(b, false)}]:${p}`)),
    fc.tuple(ipv6Bytes, fc.integer({ min: 0, max: 128 })).map(([b, len]) => `[${fullIpv6(maskBytes(b, len), false)}/${len}]:443`),
  );

  it('property: text -> parse -> .text -> parse is a fixed point', () => {
    fc.assert(
      fc.property(validEntry, (entry) => {
        const first = parseEndpoint(entry, 'x');
        const second = parseEndpoint(first.text, 'x');
        expect(second).toEqual(first);
        expect(second.text).toBe(first.text);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: space-separated and newline-separated lists parse equal', () => {
    fc.assert(
      fc.property(fc.array(validEntry, { maxLength: 12 }), fc.constantFrom('\n', '\r\n', '\t', '  \n\n  '), (entries, separator) => {
        const spaced = parseEndpointList(entries.join(' '), 'x');
        expect(parseEndpointList(entries.join(separator), 'x')).toEqual(spaced);
        expect(parseEndpointList(entries, 'x')).toEqual(spaced);
      }),
      { numRuns: 300 },
    );
  });
});
