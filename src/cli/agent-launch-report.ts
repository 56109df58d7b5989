/** The error of a daemon that `runwall agent start` launched (agent-launch.ts) and that did not come to enforce. */
import { RunwallError, isErrorCode } from '../protocol/index.js';
import { AGENT_START_TIMEOUT_MS, type AgentLaunchOutcome } from './agent-launch.js';

/** The daemon's own error (its last log line, `runwall: CODE: message`), as if this process had found it: its code decides the exit status. */
export function agentLaunchFailure(outcome: Exclude<AgentLaunchOutcome, { kind: 'ready' }>): RunwallError {
  if (outcome.kind === 'timed-out') return new RunwallError('RW_SETUP_FAILED', `the agent did not come up within ${AGENT_START_TIMEOUT_MS / 1000} s; see ${outcome.log}`);
  const own = /^runwall: (RW_[A-Z0-9_]+): (.*)$/.exec(outcome.lastLogLine);
  const code = own?.[1];
  if (code !== undefined && isErrorCode(code)) return new RunwallError(code, own?.[2] ?? '');
  return new RunwallError('RW_SETUP_FAILED', `the agent exited during start (status ${outcome.status}): ${outcome.lastLogLine || `see ${outcome.log}`}`);
}
