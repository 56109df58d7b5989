/** The table `make bench` prints: each measurement beside its baseline, the ratio, the goal and whether it was met. Pure. */
import { goalStatus, goalText, type BenchRow } from './bench-row.js';

const HEADERS = ['measurement', 'value', 'baseline', 'ratio', 'goal', 'result', 'note'] as const;

/** Three significant digits below 100, whole numbers (with thousands separators) above; a dash for no figure. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (value === 0) return '0';
  return String(Number(value.toPrecision(3)));
}

function withUnit(value: number | undefined, unit: string): string {
  if (value === undefined) return '';
  return unit === '' || !Number.isFinite(value) ? formatNumber(value) : `${formatNumber(value)} ${unit}`;
}

function cells(row: BenchRow): string[] {
  const status = goalStatus(row);
  return [
    row.name,
    withUnit(row.value, row.unit),
    withUnit(row.baseline, row.unit),
    row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
    goalText(row.goal, row.unit),
    status === 'no goal' ? '' : status,
    row.note ?? '',
  ];
}

/** Fixed-width columns; numbers right-aligned; the note column is last and left as long as it is. */
export function formatTable(rows: readonly BenchRow[]): string {
  const table = [HEADERS.slice(), ...rows.map(cells)];
  const widths = HEADERS.map((_, column) => Math.max(...table.map((line) => [...(line[column] ?? '')].length)));
  const rightAligned = new Set([1, 2, 3]);
  const render = (line: readonly string[]): string =>
    line
      .map((cell, column) => {
        if (column === line.length - 1) return cell;
        const pad = ' '.repeat((widths[column] ?? 0) - [...cell].length);
        return rightAligned.has(column) ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width, column) => '-'.repeat(column === widths.length - 1 ? Math.max(4, Math.min(width, 40)) : width)).join('  ');
  return [render(table[0] ?? []), rule, ...table.slice(1).map(render)].join('\n');
}

/** "goals: 3 met, 2 not met, 1 without data". */
export function goalSummary(rows: readonly BenchRow[]): string {
  const counts = { met: 0, 'not met': 0, 'no data': 0 };
  for (const row of rows) {
    const status = goalStatus(row);
    if (status !== 'no goal') counts[status] += 1;
  }
  return `goals: ${counts.met} met, ${counts['not met']} not met${counts['no data'] > 0 ? `, ${counts['no data']} without data` : ''}`;
}
