/**
 * detect: pure rules from what the sensors saw (events, execs, kernel facts
 * passed in as plain values) to `detection` events, each with an id, a
 * severity, a title, evidence, the process and step, and what to do. No I/O.
 */
export { DETECTION_RULES, draftOf, processRef, worseSeverity, type AncestorFacts, type DetectionDraft, type DetectionId, type DetectionRule, type Finding, type ProcessFacts } from './detection.js';
export { Detector, type DetectorInput, type DetectorOptions } from './detector.js';
export { detectExec, firewallCommandWrites, nsenterTargetsInit, tempExecReason, TEMP_DIRECTORIES } from './exec-rules.js';
export { parseContainerRun, type ContainerRisk, type ContainerRun } from './container-args.js';
export {
  detectAgentSignal,
  detectGuardedFileChange,
  detectMemoryAccess,
  isGuardedPath,
  GUARDED_DIRECTORIES,
  GUARDED_FILES,
  type AgentSignal,
  type GuardedFileChange,
  type MemoryAccess,
  type MemoryAccessMethod,
} from './access-rules.js';
export { detectPipedProgram, detectReverseShell, isShell, programDescriptor, type Descriptor, type DescriptorKind, type PipedProgram, type Relay, type ShellStdio } from './shell-rules.js';
export { detectRecon, ipEchoService, isMetadataAddress, metadataName, IP_ECHO_NAMES, METADATA_ADDRESSES, METADATA_NAMES } from './recon-rules.js';
export { commonBigramShare, labelLooksEncoded, longestConsonantRun, nameLooksEncoded, shannonEntropy, TunnelTracker, zoneOf, DEFAULT_TUNNEL_THRESHOLDS, type TunnelThresholds } from './dns-tunnel.js';
export { baseName, isOneOf, isRunnerProcess, programNames, DOWNLOADERS, NETWORK_RELAYS, SHELLS } from './programs.js';
