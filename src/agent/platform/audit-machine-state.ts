/**
 * What runwall changes in the machine's audit status, and how it puts it back.
 * Pure: the I/O (lock, marker file, netlink) is audit-hub.ts.
 *
 * Runwall needs audit on and a backlog deep enough for bursts of execs. The
 * first runwall process that changes either records the values it found in a
 * marker file (once per machine: later runwall processes leave it alone); the
 * runwall process that leaves last, with no runwall rule left in the kernel,
 * restores them and removes the marker. A value is restored only while it is
 * still what runwall set and no audit daemon has taken over.
 */
import type { AuditStatus } from './audit-message.js';

/** Records queued in the kernel before it drops (or, with a backlog wait, stalls the caller). */
export const AUDIT_BACKLOG = 8192;

export interface AuditOriginalState {
  readonly enabled: 0 | 1;
  readonly backlogLimit: number;
}

export interface AuditStatusChange {
  readonly enabled?: 0 | 1;
  readonly backlogLimit?: number;
}

/** What runwall sets when it starts using audit (nothing when audit is already on with a deep backlog). */
export function changesOnEnter(status: AuditStatus): AuditStatusChange {
  const change: { enabled?: 0 | 1; backlogLimit?: number } = {};
  if (status.enabled === 0) change.enabled = 1;
  // 0 is "no limit": deeper than any.
  if (status.backlogLimit !== 0 && status.backlogLimit < AUDIT_BACKLOG) change.backlogLimit = AUDIT_BACKLOG;
  return change;
}

/** What the last runwall out sets back, given what was found before the first one came. */
export function changesOnLeave(original: AuditOriginalState, status: AuditStatus): AuditStatusChange {
  const change: { enabled?: 0 | 1; backlogLimit?: number } = {};
  // An audit daemon registered since: audit is its now.
  if (status.pid !== 0) return change;
  if (original.enabled === 0 && status.enabled === 1) change.enabled = 0;
  if (status.backlogLimit === AUDIT_BACKLOG && original.backlogLimit !== AUDIT_BACKLOG) change.backlogLimit = original.backlogLimit;
  return change;
}

export function isEmptyChange(change: AuditStatusChange): boolean {
  return change.enabled === undefined && change.backlogLimit === undefined;
}

/** The marker file's text. */
export function encodeAuditOriginal(state: AuditOriginalState): string {
  return `${JSON.stringify({ enabled: state.enabled, backlogLimit: state.backlogLimit })}\n`;
}

const U32_MAX = 0xffff_ffff;

/** The marker file's content, strictly: null for anything runwall did not write. */
export function decodeAuditOriginal(text: string): AuditOriginalState | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  if (Object.keys(record).length !== 2) return null;
  const { enabled, backlogLimit } = record;
  if (enabled !== 0 && enabled !== 1) return null;
  if (typeof backlogLimit !== 'number' || !Number.isInteger(backlogLimit) || backlogLimit < 0 || backlogLimit > U32_MAX) return null;
  return Object.freeze({ enabled, backlogLimit });
}
