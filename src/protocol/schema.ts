/**
 * Validation of protocol values at the edges (a report read from disk, an
 * upload), and the plain JSON Schema published in schema/.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { RunwallError } from './errors.js';
import { RunEvent } from './events.js';
import { RunReport } from './report.js';

// Compiled on first use: compiling costs ~100 ms, which every `runwall` start would pay otherwise.
let reportCompiled: ReturnType<typeof TypeCompiler.Compile<typeof RunReport>> | null = null;
let eventCompiled: ReturnType<typeof TypeCompiler.Compile<typeof RunEvent>> | null = null;
const reportChecker = {
  Check: (value: unknown): value is RunReport => (reportCompiled ??= TypeCompiler.Compile(RunReport)).Check(value),
  Errors: (value: unknown) => (reportCompiled ??= TypeCompiler.Compile(RunReport)).Errors(value),
};
const eventChecker = {
  Check: (value: unknown): value is RunEvent => (eventCompiled ??= TypeCompiler.Compile(RunEvent)).Check(value),
  Errors: (value: unknown) => (eventCompiled ??= TypeCompiler.Compile(RunEvent)).Errors(value),
};

export interface SchemaProblem {
  readonly path: string;
  readonly message: string;
}

function problems(checker: typeof reportChecker | typeof eventChecker, value: unknown, limit = 10): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  for (const error of checker.Errors(value)) {
    out.push({ path: error.path || '/', message: error.message });
    if (out.length >= limit) break;
  }
  return out;
}

/** Checks an unknown value against the RunReport schema; throws RW_REPORT_INVALID naming the first problems. */
export function parseRunReport(value: unknown): RunReport {
  if (reportChecker.Check(value)) return value;
  const found = problems(reportChecker, value);
  throw new RunwallError(
    'RW_REPORT_INVALID',
    `not a runwall run report: ${found.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    { problems: found },
  );
}

export function checkRunReport(value: unknown): SchemaProblem[] {
  return reportChecker.Check(value) ? [] : problems(reportChecker, value);
}

export function checkRunEvent(value: unknown): SchemaProblem[] {
  return eventChecker.Check(value) ? [] : problems(eventChecker, value);
}

/** Drops TypeBox's nested `$id`s (a plain validator sees one resource) and its symbol keys. */
function plain(value: unknown, root: boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => plain(item, false));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$id' && !root) continue;
      out[key] = plain(inner, false);
    }
    return out;
  }
  return value;
}

export const RUN_REPORT_SCHEMA_ID = 'https://runwall.dev/schema/run-report.schema.json';

/** The JSON Schema (draft 2020-12 compatible) of the run report, as written to schema/run-report.schema.json. */
export function runReportJsonSchema(): Record<string, unknown> {
  const schema = plain(RunReport, true) as Record<string, unknown>;
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...schema, $id: RUN_REPORT_SCHEMA_ID };
}
