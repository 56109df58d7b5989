/** What dnsperf (2.x) prints: its statistics block, and with -v one line per answered query. Pure. */

export interface DnsperfSummary {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly runTimeSeconds: number;
  readonly queriesPerSecond: number;
  /** rcode name -> count, as dnsperf lists them ("NOERROR 120 (100.00%)"). */
  readonly responseCodes: Readonly<Record<string, number>>;
}

export class DnsperfOutputError extends Error {
  override readonly name = 'DnsperfOutputError';
}

function field(text: string, label: string): string | undefined {
  const escaped = label.replace(/[()]/g, '\\$&');
  return new RegExp(`^\\s*${escaped}:[ \\t]*(.*)$`, 'm').exec(text)?.[1]?.trim();
}

function numberField(text: string, label: string): number {
  const raw = field(text, label);
  const value = raw === undefined ? NaN : Number(/^([0-9]+(?:\.[0-9]+)?)/.exec(raw)?.[1]);
  if (!Number.isFinite(value)) throw new DnsperfOutputError(`dnsperf output has no '${label}' figure`);
  return value;
}

/** The statistics block; throws when a figure the bench needs is missing. */
export function parseDnsperfSummary(text: string): DnsperfSummary {
  const codes: Record<string, number> = {};
  for (const match of (field(text, 'Response codes') ?? '').matchAll(/([A-Z][A-Z0-9]*) ([0-9]+) \(/g)) {
    codes[match[1] as string] = Number(match[2]);
  }
  return Object.freeze({
    sent: numberField(text, 'Queries sent'),
    completed: numberField(text, 'Queries completed'),
    lost: numberField(text, 'Queries lost'),
    runTimeSeconds: numberField(text, 'Run time (s)'),
    queriesPerSecond: numberField(text, 'Queries per second'),
    responseCodes: Object.freeze(codes),
  });
}

const VERBOSE_LINE = /^> ([A-Z][A-Z0-9]*) (\S+) (\S+) ([0-9]+\.[0-9]+)$/;

/** Latency in seconds of every answered query in -v output (`> NOERROR n1.gen.test A 0.000123`). */
export function parseDnsperfLatencies(text: string): number[] {
  const latencies: number[] = [];
  for (const line of text.split('\n')) {
    const match = VERBOSE_LINE.exec(line.trimEnd());
    if (match) latencies.push(Number(match[4]));
  }
  return latencies;
}
