// Keeps the error-code registry and docs/errors.md in step, as fastify does.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, RunwallError } from '../../src/protocol/index.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
const documented = [...doc.matchAll(/^### (RW_[A-Z0-9_]+)$/gm)].map((m) => m[1]);

describe('error codes', () => {
  it('every code in the registry is documented, and only those', () => {
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('a RunwallError prints one line with its code', () => {
    const error = new RunwallError('RW_ENDPOINT_INVALID', "entry 'x:0': port must be 1-65535");
    expect(error.toLine()).toBe("runwall: RW_ENDPOINT_INVALID: entry 'x:0': port must be 1-65535");
    expect(Object.isFrozen(error.details)).toBe(true);
  });
});
