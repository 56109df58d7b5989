/** The "Steps" section of `runwall report`: each step with its outcome, where it went and what was found in it. Pure. */
import { summarizeEvents, summarizeSteps } from '../policy/index.js';
import type { RunEvent, RunReport, StepSummary, Verdict } from '../protocol/index.js';

export type TableFormatter = (header: readonly string[], rows: readonly (readonly string[])[]) => string;

function clock(iso: string | undefined): string {
  return iso === undefined ? '?' : (iso.split('T')[1]?.replace(/\.\d+Z$/, 'Z') ?? iso);
}

function headline(step: StepSummary, index: number): string {
  const outcome = step.outcome ?? 'running when the report was written';
  const exit = step.exitCode !== undefined && step.exitCode !== null && step.outcome !== 'success' ? ` (exit ${step.exitCode})` : '';
  const concluded = step.conclusion !== undefined && step.conclusion !== step.outcome ? `, concluded ${step.conclusion}` : '';
  const when = step.outcome === 'skipped' ? '' : `  ${clock(step.startedAt)} → ${clock(step.endedAt)}`;
  return `${index + 1}. ${step.name}  [${step.id}]  ${outcome}${exit}${concluded}${when}`;
}

function destinationsTable(events: readonly RunEvent[], table: TableFormatter, verdictLabel: Readonly<Record<Verdict, string>>): string[] {
  const destinations = summarizeEvents(events).destinations;
  if (destinations.length === 0) return ['   no network activity'];
  const rows = destinations.map((d) => {
    // Tool chains (`npm → node → curl`) where the report has them, else the executables.
    const chains = (d as { readonly chains?: readonly string[] }).chains;
    return [
      verdictLabel[d.verdict],
      d.name,
      d.port === null ? '-' : String(d.port),
      d.protocol,
      String(d.count),
      (chains !== undefined && chains.length > 0 ? chains : d.processes).join(', ') || '-',
    ];
  });
  return table(['verdict', 'destination', 'port', 'proto', 'count', 'by'], rows)
    .split('\n')
    .map((line) => `   ${line}`);
}

function detectionLines(events: readonly RunEvent[]): string[] {
  return events.flatMap((event) => (event.kind === 'detection' ? [`   ! ${event.severity.toUpperCase()} ${event.id}: ${event.title}`] : []));
}

/** Lines of the Steps section; empty when the run had no steps. */
export function formatSteps(report: RunReport, table: TableFormatter, verdictLabel: Readonly<Record<Verdict, string>>): string[] {
  const steps = report.steps ?? summarizeSteps(report.events);
  if (steps.length === 0) return [];
  const byStep = new Map<string, RunEvent[]>();
  const outside: RunEvent[] = [];
  for (const event of report.events) {
    if (event.kind === 'step' || event.kind === 'agent') continue;
    if (event.step === undefined) outside.push(event);
    else byStep.set(event.step, [...(byStep.get(event.step) ?? []), event]);
  }
  const out: string[] = ['', 'Steps'];
  steps.forEach((step, index) => {
    out.push(headline(step, index));
    if (step.reason !== undefined) out.push(`   ${step.outcome === 'skipped' ? 'skipped' : 'why'}: ${step.reason}`);
    for (const note of step.notes ?? []) out.push(`   note: ${note}`);
    const events = byStep.get(step.id) ?? [];
    if (step.outcome === 'skipped' && events.length === 0) return;
    out.push(...destinationsTable(events, table, verdictLabel));
    out.push(...detectionLines(events));
    const byTime = events.filter((event) => event.stepAttribution === 'time-window').length;
    if (byTime > 0) out.push(`   (placed by time, not by process: ${byTime} of its ${events.length} events)`);
  });
  const network = outside.filter((event) => event.kind === 'dns' || event.kind === 'connection' || event.kind === 'http' || event.kind === 'detection');
  if (network.length > 0) {
    out.push('Outside any step');
    out.push(...destinationsTable(network, table, verdictLabel));
    out.push(...detectionLines(network));
  }
  return out;
}
