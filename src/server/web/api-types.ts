/**
 * The shapes the web app reads from /api/v1, as docs/server.md documents them.
 * The web app imports only protocol types; these mirror the API contract on the client side.
 */
import type { EgressMode, RecommendedPolicy, RunEvent, RunReport, Severity, Verdict } from '../../protocol/index.js';

export interface Me {
  tenant: string;
  role: 'agent' | 'member' | 'admin' | 'operator';
  name: string;
  via: 'api-key' | 'session';
  capabilities: string[];
}

export interface RunCounts {
  events: number;
  allowed: number;
  blocked: number;
  attackBlocked: number;
  audit: number;
  detections: number;
}

export interface RunListItem {
  runId: string;
  surface: string | null;
  host: string | null;
  repo: string | null;
  workflow: string | null;
  job: string | null;
  mode: EgressMode | null;
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  verdict: Verdict;
  counts: RunCounts;
  complete: boolean;
}

export interface RunPage {
  runs: RunListItem[];
  next: string | null;
}

export interface Detection {
  id: string;
  severity: Severity;
  title: string;
  evidence: Record<string, unknown>;
  remedy: string;
  source: 'server' | 'agent';
  seq: number | null;
  time: string;
}

export interface RunDetail extends RunListItem {
  sha: string | null;
  ref: string | null;
  ciRunId: string | null;
  report: Omit<RunReport, 'events'> | null;
  detections: Detection[];
}

export interface RunResponse {
  run: RunDetail;
  check: { state: string; checkId: string | null; error: string | null } | null;
}

export interface EventPage {
  events: RunEvent[];
  nextAfter: number | null;
}

export interface Timeline {
  startMs: number;
  bucketMs: number;
  buckets: { index: number; allowed: number; blocked: number; attackBlocked: number; audit: number; other: number }[];
}

export interface NetworkTree {
  events: number;
  truncated: boolean;
  steps: {
    id: string | null;
    name: string;
    processes: { chain: string[]; pid: number | null; destinations: { destination: string; verdict: Verdict; count: number; kinds: string[] }[] }[];
  }[];
}

export interface ProcessNode {
  pid: number;
  ppid: number | null;
  exe: string | null;
  argv: string[] | null;
  step: string | null;
  startedAt: string | null;
  exitCode: number | null;
  network: Record<Verdict, number>;
  children: ProcessNode[];
}

export interface ProcessTree {
  roots: ProcessNode[];
  processes: number;
  truncated: boolean;
}

export interface Recommendation {
  basedOn: { runId: string; startedAt: string; verdict: Verdict }[];
  recommended: RecommendedPolicy;
  inForce: { source: 'policy-store' | 'run' | 'none'; policy: string | null; mode: EgressMode | null; allowedEndpoints: string[] };
  diff: { added: string[]; unused: string[]; kept: string[] };
}

export interface Replay {
  candidate: string[];
  runs: {
    runId: string;
    startedAt: string;
    verdict: Verdict;
    networkEvents: number;
    wouldBlock: { destination: string; verdict: Verdict; was: Verdict; count: number; explanation: string }[];
    truncated: boolean;
  }[];
}

export interface PolicyFields {
  egressPolicy: EgressMode;
  allowedEndpoints: string[];
  disableFileMonitoring: boolean;
  disableSudo: boolean;
  disableSudoAndContainers: boolean;
  disableTelemetry: boolean;
}

export interface StoredPolicy {
  name: string;
  fields: PolicyFields;
  version: number;
  updatedAt: string;
  updatedBy: string;
  inputs: Record<string, string>;
}

export interface Attachment {
  scope: { level: 'org' | 'repo' | 'workflow' | 'job'; org: string; repo: string | null; workflow: string | null; job: string | null };
  policy: string;
  updatedAt: string;
}

export interface BlockEntry {
  id: number;
  kind: string;
  value: string;
  text: string;
  reason: string;
  source?: string;
  addedAt: string;
  addedBy: string;
  retiredAt: string | null;
  retiredBy: string | null;
}

export interface FleetAlert {
  destination: string;
  tenants: number;
  firstSeenAt: string;
  lastSeenAt: string;
}
