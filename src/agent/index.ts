/**
 * agent: the egress engine and what runs it — `runwall exec` (one command in
 * its own namespaces) and `runwall agent` (a whole machine).
 */
export { runExec, type ExecOutcome, type ExecRequest } from './exec/run-exec.js';
export { buildReport, ciFromEnvironment } from './report/build-report.js';
export { hostResolver } from './exec/host-resolver.js';
