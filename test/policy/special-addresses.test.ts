import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { specialAddressReason } from '../../src/policy/index.js';

describe('addresses DNS may not open', () => {
  it('names loopback, link-local (metadata), unspecified and multicast, v4 and v6', () => {
    expect(specialAddressReason('169.254.169.254')).toMatch(/link-local/);
    expect(specialAddressReason('127.0.0.53')).toMatch(/loopback/);
    expect(specialAddressReason('::1')).toMatch(/loopback/);
    expect(specialAddressReason('fe80::1')).toMatch(/link-local/);
    expect(specialAddressReason('0.0.0.0')).toMatch(/unspecified/);
    expect(specialAddressReason('fd00:ec2::254')).toMatch(/metadata/);
    expect(specialAddressReason('::ffff:169.254.169.254')).toMatch(/link-local/);
  });

  it('leaves ordinary public and private addresses alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 126 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c, d) => {
        expect(specialAddressReason(`${a}.${b}.${c}.${d}`)).toBeNull();
      }),
    );
    expect(specialAddressReason('2001:db8::10')).toBeNull();
    expect(specialAddressReason('10.0.0.5')).toBeNull();
  });
});
