/**
 * Strict parsing of query strings and bodies at the edge. Unknown parameters
 * and values outside a closed set are errors naming the parameter, never
 * ignored and never defaulted.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TSchema, Static } from '@sinclair/typebox';
import { RunwallError, type Verdict } from '../../protocol/index.js';
import { VERDICTS, isVerdict } from '../run-facts.js';
import type { Cursor } from '../store/types.js';

export type Query = Readonly<Record<string, string | string[] | undefined>>;

/** Throws RW_QUERY_INVALID for a parameter that is not in `known`, or given twice. */
export function checkQuery(query: Query, known: readonly string[]): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (!known.includes(name)) {
      throw new RunwallError('RW_QUERY_INVALID', `unknown query parameter '${name}' (known: ${known.join(', ') || 'none'})`, { parameter: name });
    }
    if (Array.isArray(value)) throw new RunwallError('RW_QUERY_INVALID', `query parameter '${name}' is given more than once`, { parameter: name });
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function verdictParam(name: string, value: string | undefined): Verdict | undefined {
  if (value === undefined) return undefined;
  if (!isVerdict(value)) {
    throw new RunwallError('RW_QUERY_INVALID', `${name} must be one of ${VERDICTS.join(', ')}, not '${value}'`, { parameter: name, value });
  }
  return value;
}

export function intParam(name: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new RunwallError('RW_QUERY_INVALID', `${name} must be a whole number from ${min} to ${max}, not '${value}'`, { parameter: name, value });
  }
  return Number(value);
}

/** An ISO 8601 date or date-time (`2026-11-26` or `2026-11-26T12:00:00Z`). */
export function timeParam(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) {
    throw new RunwallError('RW_QUERY_INVALID', `${name} must be an ISO 8601 date or time (2026-11-26 or 2026-11-26T12:00:00Z), not '${value}'`, {
      parameter: name,
      value,
    });
  }
  return ms;
}

/** A non-empty text of bounded length (names, repos, jobs). */
export function textParam(name: string, value: string | undefined, max = 200): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > max) {
    throw new RunwallError('RW_QUERY_INVALID', `${name} must be 1-${max} characters`, { parameter: name });
  }
  return value;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.startedMs}.${cursor.pk}`).toString('base64url');
}

export function cursorParam(value: string | undefined): Cursor | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(value, 'base64url').toString('utf8'));
  if (!match) throw new RunwallError('RW_QUERY_INVALID', "cursor is not one this server returned (use the 'next' value of the previous page)", { parameter: 'cursor' });
  return { startedMs: Number(match[1]), pk: Number(match[2]) };
}

/** A body checked against a TypeBox schema; problems name the JSON pointer of each. */
export function bodyChecker<T extends TSchema>(schema: T, what: string): (value: unknown) => Static<T> {
  const checker = TypeCompiler.Compile(schema);
  return (value: unknown) => {
    if (checker.Check(value)) return value;
    const problems: { path: string; message: string }[] = [];
    for (const error of checker.Errors(value)) {
      problems.push({ path: error.path || '/', message: error.message });
      if (problems.length >= 10) break;
    }
    throw new RunwallError('RW_PAYLOAD_INVALID', `${what}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
  };
}

/** A run id as a path segment: printable, bounded. */
export function runIdParam(value: string): string {
  if (!/^[\x21-\x7e]{1,200}$/.test(value)) throw new RunwallError('RW_NOT_FOUND', 'no such run');
  return value;
}
