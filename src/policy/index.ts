/**
 * policy: parse and validate endpoints, modes, block lists and policy files;
 * compile the effective policy into a matcher; summarize a run and recommend
 * the policy that would let it pass. Pure: no I/O.
 */
export { parseEgressMode } from './mode.js';
export { parseEndpoint, parseEndpointList } from './endpoints.js';
export { parseBlockList } from './block-list.js';
export { parsePolicyFile, POLICY_FILE_KEYS, type PolicySettings } from './policy-file.js';
export { parseDnsUpstream } from './upstream.js';
export { resolvePolicy, type PolicySources } from './resolve.js';
export {
  compileSourceWriters,
  globToRegExp,
  parseSourceWriterEntry,
  parseSourceWriters,
  type SourceWriter,
  type SourceWriterMatcher,
} from './source-writers.js';
export {
  compilePolicy,
  type BlockedNetwork,
  type CompiledPolicy,
  type ConnectionDecision,
  type ConnectionQuery,
  type NameDecision,
  type StaticAllow,
} from './compile.js';
export { RunSummaryBuilder, summarizeEvents, worseVerdict } from './summary.js';
export { buildProcessTree, eventChains, processChain, processName, ProcessTreeBuilder } from './process-tree.js';
export { PolicyRecommender, recommendPolicy } from './recommend.js';
export { canonicalIp, cidrContains, ipFamily, parseIp } from './ip.js';
export { StepSummaryBuilder, summarizeSteps } from './steps.js';
export { parseWorkflow, planJob, type JobPlan, type PlannedStep, type Workflow, type WorkflowJob, type WorkflowStep } from './workflow.js';
export {
  cancelJob,
  completeStep,
  jobExitCode,
  prepareStep,
  shellCommand,
  skipStep,
  startJob,
  type JobState,
  type JobStatus,
  type LocalRunner,
  type RunAction,
  type StepAction,
  type StepExit,
  type StepFiles,
  type StepRecord,
} from './workflow-run.js';
export {
  evaluateCondition,
  evaluateExpression,
  ExpressionSyntaxError,
  ExpressionUnavailable,
  parseCondition,
  parseExpression,
  parseTemplate,
  renderTemplate,
  type EvaluationContext,
  type Expression,
  type ExpressionValue,
  type Template,
} from './workflow-expression.js';
export { parseFileCommands, parsePathFile } from './workflow-file-commands.js';
export { specialAddressReason } from './special-addresses.js';
