/**
 * agent/platform: the only code in runwall that touches the kernel directly:
 * libnftables in-process, nftables set updates over netlink, the NFLOG reader, network namespaces and links, cgroup v2,
 * fanotify (file changes by handle and name), audit (one reader per process,
 * shared by the process sensor and the detector).
 */
export { Nftables } from './nftables.js';
export { NftSetWriter } from './nft-set-writer.js';
export { concatKey, type SetElement, type SetElementOperation } from './nft-set-message.js';
export { decodeNflogMessages, type NflogDecodeError, type NflogDecoded, type NflogPacket, type NflogProtocol } from './nflog-message.js';
export { NflogReader, type NflogReaderError } from './nflog.js';
export { decodeNfqueueMessages, NF_ACCEPT, NF_DROP, NF_REPEAT, type QueuedPacket, type QueuedTcp, type QueueVerdict } from './nfqueue-message.js';
export { NfqueueReader, type NfqueueReaderError } from './nfqueue.js';
export { iptablesChains, iptablesRestore, iptablesSave, iptablesTry } from './iptables-batch.js';
export { createNetns, deleteNetns, ip, ipBatch, linkExists, listNetns, netnsExists, netnsPath, sysctl, type NetnsOption } from './netns.js';
export { cgroup2Root, cgroupOfPid, cgroupPids, createCgroup, killCgroup, moveToCgroup, removeCgroup } from './cgroup.js';
export { nftCgroupView } from './nft-cgroup-loader.js';
export { AuditStream, auditArch, type AuditStreamProblem } from './audit.js';
export type { AuditActivity, AuditExec, AuditSocketCall } from './audit-message.js';
export { DetectAuditStream, type DetectAuditOptions } from './audit-detect.js';
export { watchFileId, type DetectAuditActivity } from './audit-detect-message.js';
export { ProcConnector, type ProcConnectorProblem } from './proc-connector.js';
export { shellExitCode, type ProcEvent } from './proc-connector-message.js';
export { acceptForwardFor, forwardPolicyDrops } from './iptables.js';
export { FanotifyGroup, FILE_CHANGE_MASK, filesystemIdOf, handleKeyOfPath } from './fanotify.js';
export {
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_DELETE,
  FAN_MODIFY,
  FAN_ONDIR,
  FAN_RENAME,
  decodeFanotifyEvents,
  type DirEntry,
  type FanotifyDecodeError,
  type FanotifyDecoded,
  type FanotifyEvent,
} from './fanotify-event.js';
export { childPids } from './proc-children.js';
export { LONG_RUN_MALLOC, mallocEnvironment, tuneMalloc, type MallocSettings } from './malloc-tuning.js';
