/** protocol: the types and schemas every part shares. Pure: no I/O. */
export {
  ERROR_CODES,
  EXIT_RUNWALL_FAILED,
  EXIT_USAGE,
  INPUT_ERROR_CODES,
  RunwallError,
  isErrorCode,
  isRunwallError,
  type ErrorCode,
} from './errors.js';
export {
  AgentEvent,
  ConnectionEvent,
  DetectionEvent,
  DnsAnswer,
  DnsEvent,
  EgressMode,
  FileEvent,
  HttpEvent,
  ProcessEvent,
  ProcessRef,
  RuleRef,
  RunEvent,
  Severity,
  StepEvent,
  TransportProtocol,
  Verdict,
  type EventKind,
  type UnsequencedEvent,
} from './events.js';
export {
  BlockListEntry,
  DestinationSummary,
  EffectivePolicy,
  EnforcementStatus,
  Endpoint,
  EndpointKind,
  RecommendedPolicy,
  REPORT_SCHEMA_VERSION,
  RunMetadata,
  RunReport,
  RunSummary,
  SourceWriterRule,
} from './report.js';
export {
  checkRunEvent,
  checkRunReport,
  parseRunReport,
  runReportJsonSchema,
  RUN_REPORT_SCHEMA_ID,
  type SchemaProblem,
} from './schema.js';
export { RUNWALL_VERSION } from './version.js';
