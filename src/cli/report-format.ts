/** The run report as text for a terminal. Pure. */
import type { ProcessNode, RunReport, Verdict } from '../protocol/index.js';
import { formatSteps } from './report-steps.js';

const VERDICT_LABEL: Record<Verdict, string> = {
  allowed: 'allowed',
  blocked: 'BLOCKED',
  'attack-blocked': 'ATTACK BLOCKED',
  audit: 'audit (would block)',
};

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.min(60, Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        const text = cell.length > width ? `${cell.slice(0, width - 1)}…` : cell;
        return column === cells.length - 1 ? text : text.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatRunSummaryLine(report: Pick<RunReport, 'summary' | 'enforcement'>, reportPath?: string): string {
  const c = report.summary.counts;
  const parts = [`runwall: ${report.summary.destinations.length} destinations`, `${c.blocked} blocked`];
  if (c.attackBlocked > 0) parts.push(`${c.attackBlocked} attack-blocked`);
  if (c.audit > 0) parts.push(`${c.audit} would be blocked`);
  if (report.enforcement.problems.length > 0) parts.push(`${report.enforcement.problems.length} problems`);
  return `${parts.join(', ')}${reportPath ? `; report: ${reportPath}` : ''}`;
}

const TREE_LINES_MAX = 60;

/** The job's process tree, indented by depth: `sh (pid 10) → exit 0`, bounded in lines. */
export function formatProcessTree(report: RunReport): string[] {
  const nodes = report.processes ?? [];
  if (nodes.length === 0) return [];
  const children = new Map<number | undefined, ProcessNode[]>();
  for (const node of nodes) children.set(node.parent, [...(children.get(node.parent) ?? []), node]);
  const lines: string[] = [];
  // Iterative depth-first walk; ids only point backwards, so it ends.
  const stack: { node: ProcessNode; depth: number }[] = [...(children.get(undefined) ?? [])].reverse().map((node) => ({ node, depth: 0 }));
  while (stack.length > 0 && lines.length < TREE_LINES_MAX) {
    const { node, depth } = stack.pop()!;
    const args = node.argv && node.argv.length > 1 ? ` ${node.argv.slice(1).join(' ')}` : '';
    const shown = `${node.name ?? node.exe ?? '?'}${args}`;
    const end = node.exitCode === undefined ? '' : ` → exit ${node.exitCode}`;
    lines.push(`${'  '.repeat(depth)}${shown.length > 100 ? `${shown.slice(0, 99)}…` : shown} (pid ${node.pid})${end}`);
    for (const child of [...(children.get(node.id) ?? [])].reverse()) stack.push({ node: child, depth: depth + 1 });
  }
  if (nodes.length > lines.length) lines.push(`… ${nodes.length - lines.length} more processes in the report`);
  return ['', `Processes (${nodes.length})`, ...lines];
}

export function formatReport(report: RunReport): string {
  const run = report.run;
  const out: string[] = [];
  out.push(`runwall run ${run.runId} (${run.surface}) on ${run.host}`);
  if (run.command) out.push(`command:  ${run.command.join(' ')}  → exit ${run.exitCode ?? '?'}${run.signal ? ` (${run.signal})` : ''}`);
  if (run.workflow) out.push(`workflow: ${run.workflow.path}, job ${run.workflow.job}${run.workflow.name ? ` (${run.workflow.name})` : ''}  → exit ${run.exitCode ?? '?'}`);
  out.push(`time:     ${run.startedAt} → ${run.endedAt}`);
  out.push(`policy:   egress-policy ${report.policy.egressPolicy}; ${report.policy.allowedEndpoints.length} allowed endpoints; ${report.policy.blockList.length} block-list entries; DNS upstream ${report.policy.dnsUpstream}`);
  out.push(`verdict:  ${VERDICT_LABEL[report.summary.verdict]}; enforced: ${report.enforcement.enforced ? 'yes' : 'no'}${report.enforcement.failClosed ? '; FAIL-CLOSED after a problem' : ''}`);
  out.push('');
  out.push('Destinations');
  out.push(
    table(
      ['verdict', 'destination', 'port', 'proto', 'count', 'addresses', 'called by'],
      report.summary.destinations.map((d) => [
        VERDICT_LABEL[d.verdict],
        d.name,
        d.port === null ? '-' : String(d.port),
        d.protocol,
        String(d.count),
        d.addresses.join(' ') || '-',
        (d.chains && d.chains.length > 0 ? d.chains : d.processes).join('; ') || '-',
      ]),
    ),
  );
  out.push(...formatProcessTree(report));
  out.push(...formatSteps(report, table, VERDICT_LABEL));
  const denied = report.events.filter((e) => 'verdict' in e && e.verdict !== 'allowed');
  if (denied.length > 0) {
    out.push('');
    out.push('Why');
    const seen = new Set<string>();
    for (const event of denied) {
      if (!('rule' in event)) continue;
      const line = `- ${event.rule.explanation}${event.rule.suggestion ? `\n    to allow it: ${event.rule.suggestion}` : ''}`;
      if (seen.has(line)) continue;
      seen.add(line);
      out.push(line);
      if (seen.size >= 50) {
        out.push(`- … ${denied.length - 50} more in the report`);
        break;
      }
    }
  }
  if (report.enforcement.problems.length > 0) {
    out.push('');
    out.push('Problems');
    for (const problem of report.enforcement.problems) out.push(`- ${problem.time} ${problem.code}: ${problem.message}`);
  }
  out.push('');
  out.push('Recommended policy (block mode)');
  out.push('egress-policy: block');
  out.push('allowed-endpoints: >');
  for (const entry of report.recommendedPolicy.allowedEndpoints) out.push(`  ${entry}`);
  for (const excluded of report.recommendedPolicy.excluded) out.push(`  # left out ${excluded.destination}: ${excluded.reason}`);
  return out.join('\n');
}
