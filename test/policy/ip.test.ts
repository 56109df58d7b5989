import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp, cidrContains, ipFamily } from '../../src/policy/index.js';
import { isIPv4 } from 'node:net';
import { parseIpv4, parseIpv6 } from '../../src/policy/ip.js';
import { bytesToGroups, fullIpv6, ipv4, ipv4Bytes, ipv6Bytes, maskBytes } from './helpers.js';

describe('ipFamily', () => {
  it('tells IPv4 from IPv6 from anything else, like net.isIP', () => {
    expect(ipFamily('198.51.100.7')).toBe(4);
    expect(ipFamily('0.0.0.0')).toBe(4);
    expect(ipFamily('2001:db8::1')).toBe(6);
    expect(ipFamily('::')).toBe(6);
    expect(ipFamily('::ffff:198.51.100.7')).toBe(6);
    for (const bad of ['', 'example.com', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', ':::', '1::2::3', '2001:db8::1%eth0', 'g::1', '12345::', '1:2:3:4:5:6:7:8:9', '[::1]']) {
      expect(ipFamily(bad), bad).toBe(0);
    }
  });
});

describe('parseIpv4', () => {
  it('property: reads a dotted quad exactly when net.isIPv4 does (no leading zeros), part by part', () => {
    const text = fc.string({ unit: fc.constantFrom('0', '1', '2', '5', '9', '.'), maxLength: 17 });
    const quad = fc.tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300)).map((parts) => parts.join('.'));
    fc.assert(
      fc.property(fc.oneof(text, quad), (candidate) => {
        const bytes = parseIpv4(candidate);
        expect(bytes !== null, candidate).toBe(isIPv4(candidate));
        if (bytes !== null) expect(bytes).toEqual(candidate.split('.').map(Number));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('canonicalIp', () => {
  it('writes IPv6 per RFC 5952', () => {
    expect(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // the first of two equal runs
    expect(canonicalIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // one zero group is not compressed
    expect(canonicalIp('2001:db8:0:0:1:0:0:0')).toBe('2001:db8:0:0:1::'); // the longest run
    expect(canonicalIp('0:0:0:0:0:0:0:0')).toBe('::');
    expect(canonicalIp('0:0:0:0:0:0:0:1')).toBe('::1');
  });

  it('keeps an IPv4-mapped address in mixed notation, whichever way it was written', () => {
    expect(canonicalIp('::ffff:c633:6407')).toBe('::ffff:198.51.100.7');
    expect(canonicalIp('0:0:0:0:0:FFFF:198.51.100.7')).toBe('::ffff:198.51.100.7');
  });

  it('accepts a dotted-quad tail in any IPv6 address', () => {
    expect(canonicalIp('64:ff9b::198.51.100.7')).toBe('64:ff9b::c633:6407');
  });

  it('returns null for what is not an address', () => {
    expect(canonicalIp('example.com')).toBeNull();
    expect(canonicalIp('1.2.3.04')).toBeNull();
  });

  it('property: any spelling of an IPv6 address canonicalises to one text, which is a fixed point and the same address', () => {
    fc.assert(
      fc.property(ipv6Bytes, fc.boolean(), fc.nat(7), fc.nat(8), (bytes, upper, from, length) => {
        const canonical = canonicalIp(fullIpv6(bytes, upper)) ?? '';
        expect(canonical).not.toBe('');
        expect(canonicalIp(canonical)).toBe(canonical);
        expect(parseIpv6(canonical)).toEqual(bytes);
        // Another spelling: compress any run of zero groups, not necessarily the longest.
        const groups = bytesToGroups(bytes).map((g) => g.toString(16));
        const end = Math.min(8, from + length);
        if (end - from >= 1 && groups.slice(from, end).every((g) => g === '0')) {
          const other = `${groups.slice(0, from).join(':')}::${groups.slice(end).join(':')}`;
          expect(canonicalIp(other)).toBe(canonical);
        }
        const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
        if (mapped) {
          expect(canonical).toBe(`::ffff:${bytes.slice(12).join('.')}`);
        } else {
          // The WHATWG URL serializer compresses IPv6 the RFC 5952 way: an independent oracle.
          expect(canonical).toBe(new URL(`http://[${fullIpv6(bytes, false)}]/`).hostname.slice(1, -1));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('property: canonical IPv4 text round-trips', () => {
    fc.assert(fc.property(ipv4, (text) => {
      expect(canonicalIp(text)).toBe(text);
    }), { numRuns: 200 });
  });
});

/** A bit-by-bit containment check, independent of the implementation's byte masking. */
function naiveContains(netBytes: number[], prefix: number, ipBytes: number[]): boolean {
  const toBig = (bytes: number[]) => bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  const width = BigInt(netBytes.length * 8);
  const shift = width - BigInt(prefix);
  return toBig(netBytes) >> shift === toBig(ipBytes) >> shift;
}

function v6Text(bytes: number[]): string {
  return fullIpv6(bytes, false);
}

describe('cidrContains', () => {
  it('contains the addresses of its network only', () => {
    expect(cidrContains('198.51.100.0/24', '198.51.100.255')).toBe(true);
    expect(cidrContains('198.51.100.0/24', '198.51.101.0')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '203.0.113.1')).toBe(true);
    expect(cidrContains('2001:db8::/32', '2001:db8:ffff::1')).toBe(true);
    expect(cidrContains('2001:db8::/32', '2001:db9::1')).toBe(false);
    expect(cidrContains('198.51.100.7', '198.51.100.7')).toBe(true);
  });

  it('compares an IPv4-mapped address as the IPv4 address it is on the wire', () => {
    expect(cidrContains('198.51.100.0/24', '::ffff:198.51.100.7')).toBe(true);
    expect(cidrContains('::ffff:198.51.100.0/120', '198.51.100.7')).toBe(true);
    expect(cidrContains('::/0', '198.51.100.7')).toBe(false);
  });

  it('never mixes families and is false for unparsable input', () => {
    expect(cidrContains('0.0.0.0/0', '2001:db8::1')).toBe(false);
    expect(cidrContains('::/0', '2001:db8::1')).toBe(true);
    expect(cidrContains('198.51.100.0/33', '198.51.100.1')).toBe(false);
    expect(cidrContains('nonsense', '198.51.100.1')).toBe(false);
    expect(cidrContains('198.51.100.0/24', 'nonsense')).toBe(false);
  });

  it('property: agrees with a naive bit check (IPv4)', () => {
    fc.assert(
      fc.property(ipv4Bytes, fc.integer({ min: 0, max: 32 }), ipv4Bytes, fc.boolean(), (net, prefix, other, inside) => {
        const network = maskBytes(net, prefix);
        // Half the time pick an address inside the network, to exercise both answers.
        const hostMask = maskBytes([255, 255, 255, 255], prefix).map((b) => ~b & 0xff);
        const ip = inside ? network.map((byte, i) => byte | ((other[i] ?? 0) & (hostMask[i] ?? 0))) : other;
        expect(cidrContains(`${network.join('.')}/${prefix}`, ip.join('.'))).toBe(naiveContains(network, prefix, ip));
      }),
      { numRuns: 500 },
    );
  });

  it('property: agrees with a naive bit check (IPv6, outside the mapped range)', () => {
    const notMapped = ipv6Bytes.filter((bytes) => !(bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff));
    fc.assert(
      fc.property(notMapped, fc.integer({ min: 0, max: 128 }), notMapped, fc.boolean(), (net, prefix, other, inside) => {
        const network = maskBytes(net, prefix);
        const hostMask = maskBytes(new Array<number>(16).fill(255), prefix).map((b) => ~b & 0xff);
        const candidate = inside ? network.map((byte, i) => byte | ((other[i] ?? 0) & (hostMask[i] ?? 0))) : other;
        const isMapped = candidate.slice(0, 10).every((b) => b === 0) && candidate[10] === 0xff && candidate[11] === 0xff;
        fc.pre(!isMapped);
        expect(cidrContains(`${v6Text(network)}/${prefix}`, v6Text(candidate))).toBe(naiveContains(network, prefix, candidate));
        expect(cidrContains(`${canonicalIp(v6Text(network))}/${prefix}`, canonicalIp(v6Text(candidate)) ?? '')).toBe(
          naiveContains(network, prefix, candidate),
        );
      }),
      { numRuns: 500 },
    );
  });
});
