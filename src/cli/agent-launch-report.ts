/** What `runwall agent start` prints once the daemon it launched (agent-launch.ts) enforces, or the error it ended with. */
import { RunwallError, isErrorCode } from '../protocol/index.js';
import { AGENT_START_TIMEOUT_MS, type AgentLaunchOutcome } from './agent-launch.js';

/** The fields of the daemon's status line this prints (AgentStatus in src/agent). */
interface LaunchedStatus {
  readonly pid: number;
  readonly mode: string;
  readonly enforcingAfterMs: number;
  readonly resolvers: readonly string[];
  readonly control: string;
}

/** The daemon's own error (its last log line, `runwall: CODE: message`), as if this process had found it; its exit status decides ours through the code. */
function daemonFailure(outcome: Extract<AgentLaunchOutcome, { kind: 'exited' }>): RunwallError {
  const own = /^runwall: (RW_[A-Z0-9_]+): (.*)$/.exec(outcome.lastLogLine);
  const code = own?.[1];
  if (code !== undefined && isErrorCode(code)) return new RunwallError(code, own?.[2] ?? '');
  return new RunwallError('RW_SETUP_FAILED', `the agent exited during start (status ${outcome.status}): ${outcome.lastLogLine || `see ${outcome.log}`}`);
}

/** Prints the one line of a started agent; throws RunwallError for one that did not start. */
export async function reportAgentLaunch(launch: Promise<AgentLaunchOutcome>): Promise<void> {
  const outcome = await launch;
  if (outcome.kind === 'timed-out') throw new RunwallError('RW_SETUP_FAILED', `the agent did not come up within ${AGENT_START_TIMEOUT_MS / 1000} s; see ${outcome.log}`);
  if (outcome.kind === 'exited') throw daemonFailure(outcome);
  const status = JSON.parse(outcome.statusLine) as LaunchedStatus;
  process.stdout.write(
    `runwall agent: enforcing ${status.mode} mode (pid ${status.pid}), ${status.enforcingAfterMs} ms after start; resolver ${status.resolvers.join(', ')}; control ${status.control}\n`,
  );
}
