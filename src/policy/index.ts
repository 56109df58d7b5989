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
export { summarizeEvents, worseVerdict } from './summary.js';
export { recommendPolicy } from './recommend.js';
export { canonicalIp, cidrContains, ipFamily } from './ip.js';
