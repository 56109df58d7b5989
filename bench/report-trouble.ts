/**
 * What in a run report says runwall got in the way of a job that should have run
 * untouched: problems it recorded, and DNS or connection events it did not allow.
 * The bench's workloads only reach allowed names, so any of these is worth a note. Pure.
 */

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** One short line (at most `limit` characters), or undefined when the report shows nothing wrong. */
export function reportTrouble(report: unknown, limit = 240): string | undefined {
  const text = describeTrouble(report);
  if (text === undefined || text.length <= limit) return text;
  return `${text.slice(0, Math.max(0, limit - 1))}…`;
}

function describeTrouble(report: unknown): string | undefined {
  if (!isRecord(report)) return 'no run report';
  const enforcement = isRecord(report['enforcement']) ? report['enforcement'] : {};
  const problems = list(enforcement['problems']).map((p) => (isRecord(p) ? `${String(p['code'])}: ${String(p['message'])}` : String(p)));
  const denied = list(report['events']).filter(
    (e) => isRecord(e) && (e['kind'] === 'dns' || e['kind'] === 'connection') && e['verdict'] !== 'allowed',
  ) as Record<string, unknown>[];
  const parts: string[] = [];
  if (problems.length > 0) parts.push(`${problems.length} problem${problems.length === 1 ? '' : 's'} (${problems[0]})`);
  if (denied.length > 0) {
    const first = denied[0] ?? {};
    const what = first['kind'] === 'dns' ? `dns ${String(first['name'])} ${String(first['rcode'])}` : `${String(first['destination'])}:${String(first['port'])}`;
    parts.push(`${denied.length} not allowed (first: ${what} ${String(first['verdict'])})`);
  }
  return parts.length === 0 ? undefined : parts.join(', ');
}
