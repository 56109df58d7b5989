/**
 * One line of `make bench`: a measurement, the baseline measured beside it in
 * the same run, their ratio, and the goal it is held to. Pure.
 */

/** What a goal bounds: the measured value itself, or its ratio to the baseline. */
export interface BenchGoal {
  readonly on: 'value' | 'ratio';
  readonly bound: 'at-most' | 'at-least';
  readonly limit: number;
}

export interface BenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: number;
  /** value / baseline */
  readonly ratio?: number;
  readonly note?: string;
  readonly goal?: BenchGoal;
}

export type GoalStatus = 'met' | 'not met' | 'no goal' | 'no data';

/** value / baseline, or undefined when either is not a positive finite number. */
export function ratioOf(value: number, baseline: number | undefined): number | undefined {
  if (baseline === undefined || !Number.isFinite(value) || !Number.isFinite(baseline) || baseline <= 0 || value < 0) return undefined;
  return value / baseline;
}

/** A frozen row with its ratio computed from value and baseline. */
export function benchRow(fields: Omit<BenchRow, 'ratio'>): BenchRow {
  const ratio = ratioOf(fields.value, fields.baseline);
  return Object.freeze({ ...fields, ...(ratio !== undefined ? { ratio } : {}) });
}

export function goalStatus(row: BenchRow): GoalStatus {
  const goal = row.goal;
  if (!goal) return 'no goal';
  const measured = goal.on === 'ratio' ? row.ratio : row.value;
  if (measured === undefined || !Number.isFinite(measured)) return 'no data';
  const met = goal.bound === 'at-most' ? measured <= goal.limit : measured >= goal.limit;
  return met ? 'met' : 'not met';
}

/** "≤ 1.5×", "≥ 1×", "≤ 300 ms". */
export function goalText(goal: BenchGoal | undefined, unit: string): string {
  if (!goal) return '';
  const sign = goal.bound === 'at-most' ? '≤' : '≥';
  return goal.on === 'ratio' ? `${sign} ${goal.limit}×` : `${sign} ${goal.limit} ${unit}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalNumber(record: Record<string, unknown>, key: string, where: string): number | undefined {
  const value = record[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${where}: ${key} must be a number`);
  return value;
}

function parseGoal(value: unknown, where: string): BenchGoal | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw new TypeError(`${where}: goal must be an object`);
  const { on, bound, limit } = value;
  if (on !== 'value' && on !== 'ratio') throw new TypeError(`${where}: goal.on must be 'value' or 'ratio'`);
  if (bound !== 'at-most' && bound !== 'at-least') throw new TypeError(`${where}: goal.bound must be 'at-most' or 'at-least'`);
  if (typeof limit !== 'number' || !Number.isFinite(limit)) throw new TypeError(`${where}: goal.limit must be a finite number`);
  return { on, bound, limit };
}

/**
 * Checks rows that come from another module (the server bench) once, at the edge:
 * a list of { name, value, unit, baseline?, ratio?, note?, goal? }. A missing ratio
 * is computed; a given one is kept.
 */
export function parseBenchRows(input: unknown, source: string): readonly BenchRow[] {
  if (!Array.isArray(input)) throw new TypeError(`${source}: expected a list of rows`);
  return Object.freeze(
    input.map((item: unknown, index) => {
      const where = `${source} row ${index}`;
      if (!isRecord(item)) throw new TypeError(`${where}: not an object`);
      const { name, value, unit, note } = item;
      if (typeof name !== 'string' || name === '') throw new TypeError(`${where}: name must be a non-empty string`);
      if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${where}: value must be a number`);
      if (typeof unit !== 'string') throw new TypeError(`${where}: unit must be a string`);
      if (note !== undefined && typeof note !== 'string') throw new TypeError(`${where}: note must be a string`);
      const baseline = optionalNumber(item, 'baseline', where);
      const ratio = optionalNumber(item, 'ratio', where) ?? ratioOf(value, baseline);
      const goal = parseGoal(item['goal'], where);
      return Object.freeze({
        name,
        value,
        unit,
        ...(baseline !== undefined ? { baseline } : {}),
        ...(ratio !== undefined ? { ratio } : {}),
        ...(note !== undefined ? { note } : {}),
        ...(goal ? { goal } : {}),
      });
    }),
  );
}

/** Rows as a bench part returns them, a list or `{ rows: [...] }`, checked as parseBenchRows does. */
export function parseBenchResult(result: unknown, source: string): readonly BenchRow[] {
  const list = isRecord(result) ? result['rows'] : result;
  return parseBenchRows(list, source);
}
