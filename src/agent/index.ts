/**
 * agent: the egress engine and what runs it — `runwall exec` (one command in
 * its own namespaces) and `runwall agent` (a whole machine).
 */
export { runExec, type ExecOutcome, type ExecRequest } from './exec/run-exec.js';
export { buildReport, ciFromEnvironment } from './report/build-report.js';
export { hostResolver } from './exec/host-resolver.js';
export {
  agentPaths,
  controlSocketPath,
  recoverDeadAgent,
  runAgent,
  AGENT_LOOPBACK_RESOLVER,
  type AgentPaths,
  type AgentStatus,
} from './daemon/agent-daemon.js';
export { controlRequest } from './daemon/control.js';
export { upstreamFromResolvConf } from './daemon/resolver-config.js';
export { Nftables } from './platform/index.js';
export { prestartL7Worker } from './l7/l7-worker-thread.js';
