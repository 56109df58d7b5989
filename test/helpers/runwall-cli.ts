// Runs the real `runwall` command (from source, through tsx) inside a test internet's host namespace.
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunReport } from '../../src/protocol/index.js';
import type { Internet } from './internet.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const RUNWALL = ['node', '--import', 'tsx', join(REPO, 'src/cli/main.ts')];

export interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly report: RunReport | null;
  readonly reportPath: string;
  readonly eventsPath: string;
}

/** `runwall exec FLAGS --report R --events E -- sh -c SCRIPT` in the internet's host namespace. */
export async function execInHost(
  internet: Internet,
  flags: readonly string[],
  script: string,
  options: { timeoutMs?: number; stdin?: string } = {},
): Promise<ExecResult> {
  const dir = mkdtempSync(join(tmpdir(), 'runwall-exec-'));
  const reportPath = join(dir, 'report.json');
  const eventsPath = join(dir, 'events.jsonl');
  const result = await internet.runInHost(
    [...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, '--report', reportPath, '--events', eventsPath, ...flags, '--', 'sh', '-c', script],
    { cwd: REPO, timeoutMs: options.timeoutMs ?? 60_000, ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) },
  );
  const report = existsSync(reportPath) ? (JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport) : null;
  return { ...result, report, reportPath, eventsPath };
}

/** The events of one kind, typed. */
export function eventsOf<K extends RunReport['events'][number]['kind']>(
  report: RunReport,
  kind: K,
): Extract<RunReport['events'][number], { kind: K }>[] {
  return report.events.filter((e): e is Extract<RunReport['events'][number], { kind: K }> => e.kind === kind);
}
