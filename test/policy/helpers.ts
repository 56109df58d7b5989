// Shared generators and checks for the policy tests.
import fc from 'fast-check';
import { expect } from 'vitest';
import { RunwallError, type ErrorCode } from '../../src/protocol/index.js';

/** Every object reachable from `value` is frozen. */
export function isDeepFrozen(value: unknown, seen: Set<object> = new Set()): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (seen.has(value)) return true;
  seen.add(value);
  if (!Object.isFrozen(value)) return false;
  return Object.values(value).every((inner) => isDeepFrozen(inner, seen));
}

/** Runs `action`, expects a RunwallError with `code`, and returns it for further checks of its message. */
export function expectRunwallError(action: () => unknown, code: ErrorCode): RunwallError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(RunwallError);
    expect((error as RunwallError).code).toBe(code);
    return error as RunwallError;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

const LABEL_FIRST = 'abcdefghijklmnopqrstuvwxyz0123456789';
const LABEL_INNER = `${LABEL_FIRST}-_`;

/** A valid DNS label: 1-20 chars of letters/digits/-/_, no leading or trailing hyphen. */
export const label = fc
  .tuple(
    fc.constantFrom(...LABEL_FIRST),
    fc.array(fc.constantFrom(...LABEL_INNER), { maxLength: 18 }),
    fc.constantFrom(...LABEL_FIRST),
  )
  .map(([first, inner, last]) => (inner.length === 0 && first === last ? first : `${first}${inner.join('')}${last}`));

/** A valid host name of 2-4 labels whose last label has a letter (so it is not an IPv4 attempt). */
export const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-z][a-z0-9]{1,5}$/))
  .map(([labels, tld]) => [...labels, tld].join('.'));

export const port = fc.integer({ min: 1, max: 65535 });

export const ipv4Bytes = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
export const ipv4 = ipv4Bytes.map((bytes) => bytes.join('.'));

/** 16 bytes with runs of zeros more likely than chance, so `::` compression is exercised. */
export const ipv6Bytes = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.flatMap((group) => [group >> 8, group & 0xff]));

export function bytesToGroups(bytes: readonly number[]): number[] {
  const groups: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  return groups;
}

/** The uncompressed text of an IPv6 address with every group zero-padded, upper or lower case. */
export function fullIpv6(bytes: readonly number[], upper: boolean): string {
  const text = bytesToGroups(bytes)
    .map((group) => group.toString(16).padStart(4, '0'))
    .join(':');
  return upper ? text.toUpperCase() : text;
}

/** Masks an address to its first `prefix` bits. */
export function maskBytes(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bits = Math.max(0, Math.min(8, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}
