/**
 * The GitHub Actions runner's worker log (`_diag/Worker_<date>-utc.log`): the
 * record that names each step as it starts. The runner's StepsRunner writes
 * `[2024-05-01 10:00:02Z INFO StepsRunner] Processing step: DisplayName='Run npm ci'`
 * (older runners add `, AlwaysRun=…` after the name) and flushes every line,
 * so the line is on disk before the step's process starts. Pure.
 *
 * Other runner records were considered: `_temp/_runner_file_commands/` files
 * are named by a GUID, not the step; the step logs in `_diag/pages/` begin
 * with `##[group]Run <command>`, not the step's display name.
 */

export interface WorkerLogStep {
  /** ISO 8601 time of the line (second precision, UTC). */
  readonly time: string;
  readonly name: string;
}

const LINE = /^\[(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})Z INFO StepsRunner\] Processing step: DisplayName='(.*)$/;
/** What older runners wrote after the name; a name may itself contain quotes. */
const TRAILER = /', (?:AlwaysRun|ContinueOnError|Enabled)=/;

/** The steps a worker log names, in order. Lines that are not step lines are ignored. */
export function parseWorkerLog(text: string): WorkerLogStep[] {
  const steps: WorkerLogStep[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const match = LINE.exec(line);
    if (match === null) continue;
    const rest = match[3] ?? '';
    const trailer = TRAILER.exec(rest);
    const end = trailer !== null ? trailer.index : rest.lastIndexOf("'");
    if (end < 0) continue;
    steps.push({ time: `${match[1]}T${match[2]}Z`, name: rest.slice(0, end) });
  }
  return steps;
}

/** Worker log file names sort by the time they were opened: the last one is the current job's. */
export function latestWorkerLog(names: readonly string[]): string | undefined {
  return names.filter((name) => /^Worker_\d{8}-\d{6}-utc\.log$/.test(name)).sort().at(-1);
}
