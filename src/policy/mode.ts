/** egress-policy: a closed choice, parsed strictly (an unknown value is an error, never a default). */
import { RunwallError, type EgressMode } from '../protocol/index.js';

const MODES: readonly EgressMode[] = ['audit', 'block'];

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

/** Exactly `audit` or `block` (lower case); anything else is RW_MODE_INVALID naming `where` and the value. */
export function parseEgressMode(value: unknown, where: string): EgressMode {
  if (typeof value === 'string' && (MODES as readonly string[]).includes(value)) return value as EgressMode;
  throw new RunwallError('RW_MODE_INVALID', `${where}: must be "audit" or "block", not ${describeValue(value)}`, {
    where,
    value: typeof value === 'string' ? value : describeValue(value),
  });
}
