// What runwall changes in the audit status and what the last runwall out puts back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_BACKLOG,
  changesOnEnter,
  changesOnLeave,
  decodeAuditOriginal,
  encodeAuditOriginal,
  type AuditOriginalState,
} from '../../../src/agent/platform/audit-machine-state.js';
import type { AuditStatus } from '../../../src/agent/platform/audit-message.js';

function status(enabled: number, backlogLimit: number, pid = 0): AuditStatus {
  return { enabled, failure: 1, pid, rateLimit: 0, backlogLimit, lost: 0, backlog: 0 };
}

function apply(s: AuditStatus, change: { enabled?: 0 | 1; backlogLimit?: number }): AuditStatus {
  return { ...s, ...(change.enabled !== undefined ? { enabled: change.enabled } : {}), ...(change.backlogLimit !== undefined ? { backlogLimit: change.backlogLimit } : {}) };
}

describe('audit status: enter and leave', () => {
  it('a machine with audit off (as booted) gets audit on and a deep backlog, and gets both back', () => {
    const before = status(0, 64);
    expect(changesOnEnter(before)).toEqual({ enabled: 1, backlogLimit: AUDIT_BACKLOG });
    const during = apply(before, changesOnEnter(before));
    expect(changesOnLeave({ enabled: 0, backlogLimit: 64 }, during)).toEqual({ enabled: 0, backlogLimit: 64 });
  });

  it('changes nothing where audit is on with a deep or unlimited backlog', () => {
    expect(changesOnEnter(status(1, 16384))).toEqual({});
    expect(changesOnEnter(status(1, 0))).toEqual({});
  });

  it('leaves alone what an audit daemon or someone else set since', () => {
    expect(changesOnLeave({ enabled: 0, backlogLimit: 64 }, status(1, AUDIT_BACKLOG, 4242))).toEqual({});
    expect(changesOnLeave({ enabled: 0, backlogLimit: 64 }, status(1, 320))).toEqual({ enabled: 0 });
    expect(changesOnLeave({ enabled: 1, backlogLimit: 64 }, status(1, AUDIT_BACKLOG))).toEqual({ backlogLimit: 64 });
  });

  it('enter then leave gives back the status found, for any status runwall can use (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })), (enabled, backlogLimit) => {
        const before = status(enabled, backlogLimit);
        const original: AuditOriginalState = { enabled: enabled === 1 ? 1 : 0, backlogLimit };
        const after = apply(apply(before, changesOnEnter(before)), changesOnLeave(original, apply(before, changesOnEnter(before))));
        expect({ enabled: after.enabled, backlogLimit: after.backlogLimit }).toEqual({ enabled, backlogLimit });
      }),
    );
  });
});

describe('the marker file', () => {
  it('reads back what it wrote (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(0 as const, 1 as const), fc.integer({ min: 0, max: 0xffff_ffff }), (enabled, backlogLimit) => {
        expect(decodeAuditOriginal(encodeAuditOriginal({ enabled, backlogLimit }))).toEqual({ enabled, backlogLimit });
      }),
    );
  });

  it('refuses anything runwall did not write, without throwing (property)', () => {
    for (const text of ['', '{}', '[0,64]', '{"enabled":2,"backlogLimit":64}', '{"enabled":0,"backlogLimit":-1}', '{"enabled":0,"backlogLimit":64,"x":1}', '{"enabled":"0","backlogLimit":64}']) {
      expect(decodeAuditOriginal(text)).toBeNull();
    }
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const decoded = decodeAuditOriginal(text);
        if (decoded !== null) expect(decodeAuditOriginal(encodeAuditOriginal(decoded))).toEqual(decoded);
      }),
    );
  });
});
