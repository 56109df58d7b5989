/**
 * What the server keeps, as the rest of the server sees it. Values here are
 * already validated (the API validates at the edge); the store only scopes,
 * persists and aggregates. Every method that touches tenant data takes the
 * tenant id first and uses it in every query.
 */
import type {
  BlockListEntry,
  EgressMode,
  RunEvent,
  RunMetadata,
  RunReport,
  Severity,
  Verdict,
} from '../../protocol/index.js';

export const ROLES = ['agent', 'member', 'admin', 'operator'] as const;
/** agent: uploads and fetches configuration; member: reads; admin: manages its tenant; operator: runs the whole service. */
export type Role = (typeof ROLES)[number];

export const CAPABILITIES = ['ingest', 'config', 'read', 'manage', 'operate'] as const;
export type Capability = (typeof CAPABILITIES)[number];

const ROLE_CAPABILITIES: Readonly<Record<Role, readonly Capability[]>> = {
  agent: ['ingest', 'config'],
  member: ['config', 'read'],
  admin: ['ingest', 'config', 'read', 'manage'],
  operator: ['ingest', 'config', 'read', 'manage', 'operate'],
};

export function roleCan(role: Role, capability: Capability): boolean {
  return ROLE_CAPABILITIES[role].includes(capability);
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export interface Tenant {
  readonly id: number;
  readonly slug: string;
  readonly name: string;
  readonly createdAt: string;
}

/** Who is calling, after authentication. */
export interface Principal {
  readonly tenantId: number;
  readonly tenantSlug: string;
  readonly role: Role;
  /** Key label or user email, for audit fields such as `updatedBy`. */
  readonly name: string;
  readonly via: 'api-key' | 'session';
  readonly keyId?: string;
  readonly userId?: number;
}

export interface ApiKeyInfo {
  readonly keyId: string;
  readonly role: Role;
  readonly label: string;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

export interface UserInfo {
  readonly id: number;
  readonly email: string;
  readonly role: Role;
  readonly createdAt: string;
}

export interface RunCounts {
  readonly events: number;
  readonly allowed: number;
  readonly blocked: number;
  readonly attackBlocked: number;
  readonly audit: number;
  readonly detections: number;
}

export interface RunListItem {
  readonly runId: string;
  readonly surface: string | null;
  readonly host: string | null;
  readonly repo: string | null;
  readonly workflow: string | null;
  readonly job: string | null;
  readonly mode: EgressMode | null;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly exitCode: number | null;
  readonly verdict: Verdict;
  readonly counts: RunCounts;
  /** The whole report arrived (not only event batches). */
  readonly complete: boolean;
}

export type ReportWithoutEvents = Omit<RunReport, 'events'>;

export interface StoredDetection {
  readonly id: string;
  readonly severity: Severity;
  readonly title: string;
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly remedy: string;
  /** `server` for baselines computed on ingest, `agent` for detection events. */
  readonly source: 'server' | 'agent';
  readonly seq: number | null;
  readonly time: string;
}

export interface RunDetail extends RunListItem {
  readonly sha: string | null;
  readonly ref: string | null;
  readonly ciRunId: string | null;
  readonly report: ReportWithoutEvents | null;
  readonly detections: readonly StoredDetection[];
}

export interface Cursor {
  readonly startedMs: number;
  readonly pk: number;
}

export interface RunFilter {
  readonly repo?: string;
  readonly workflow?: string;
  readonly job?: string;
  readonly verdict?: Verdict;
  /** Inclusive lower bound of the start time, epoch ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound of the start time, epoch ms. */
  readonly toMs?: number;
  readonly limit: number;
  readonly cursor?: Cursor;
}

export interface RunPage {
  readonly runs: readonly RunListItem[];
  readonly next: Cursor | null;
}

export interface EventQuery {
  readonly kinds?: readonly RunEvent['kind'][];
  readonly verdict?: Verdict;
  /** Events with seq greater than this. */
  readonly afterSeq: number;
  readonly limit: number;
}

export interface EventPage {
  readonly events: readonly RunEvent[];
  readonly nextAfter: number | null;
}

export interface TimelineBucket {
  readonly index: number;
  readonly allowed: number;
  readonly blocked: number;
  readonly attackBlocked: number;
  readonly audit: number;
  /** Events without a verdict (process, file, step, agent). */
  readonly other: number;
}

export interface Timeline {
  readonly startMs: number;
  readonly bucketMs: number;
  readonly buckets: readonly TimelineBucket[];
}

export interface IngestInput {
  readonly runId: string;
  readonly metadata?: RunMetadata;
  readonly report?: ReportWithoutEvents;
  readonly events: readonly RunEvent[];
}

export interface IngestResult {
  readonly runId: string;
  /** The run did not exist before this upload. */
  readonly created: boolean;
  readonly received: number;
  readonly added: number;
  /** Events already stored (a retried upload). */
  readonly duplicates: number;
  /** Destinations this upload made new `anomalous-endpoint` detections for. */
  readonly anomalies: readonly string[];
  /** Destinations that crossed the fleet-alert threshold with this upload. */
  readonly fleetAlerts: readonly string[];
  readonly verdict: Verdict;
}

/** The Action's policy fields, as stored in the policy store. */
export interface PolicyFields {
  readonly egressPolicy: EgressMode;
  /** Canonical allowed-endpoints entries. */
  readonly allowedEndpoints: readonly string[];
  readonly disableFileMonitoring: boolean;
  readonly disableSudo: boolean;
  readonly disableSudoAndContainers: boolean;
  readonly disableTelemetry: boolean;
}

export interface StoredPolicy {
  readonly name: string;
  readonly fields: PolicyFields;
  readonly version: number;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

export const SCOPE_LEVELS = ['org', 'repo', 'workflow', 'job'] as const;
export type ScopeLevel = (typeof SCOPE_LEVELS)[number];

/** Where a policy applies. `repo` is `owner/name`; each level needs the fields of the levels above it. */
export interface PolicyScope {
  readonly level: ScopeLevel;
  readonly org: string;
  readonly repo: string | null;
  readonly workflow: string | null;
  readonly job: string | null;
}

export interface PolicyAttachment {
  readonly scope: PolicyScope;
  readonly policy: string;
  readonly updatedAt: string;
}

export interface ResolveQuery {
  readonly org: string;
  readonly repo?: string;
  readonly workflow?: string;
  readonly job?: string;
}

export interface ResolvedPolicy {
  readonly policy: StoredPolicy;
  readonly attachment: PolicyAttachment;
}

export interface StoredBlockEntry extends BlockListEntry {
  readonly id: number;
  readonly addedAt: string;
  readonly addedBy: string;
  readonly retiredAt: string | null;
  readonly retiredBy: string | null;
}

export interface BlockListSnapshot {
  /** Changes with every add and retire, in every server process sharing the database. */
  readonly version: number;
  readonly entries: readonly StoredBlockEntry[];
}

export interface FleetAlert {
  readonly destination: string;
  readonly tenants: number;
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
}

export interface JobRunRef {
  readonly pk: number;
  readonly runId: string;
  readonly startedAt: string;
  readonly verdict: Verdict;
  readonly policyAllowed: readonly string[] | null;
  readonly mode: EgressMode | null;
}

export type CheckRunState = 'pending' | 'posted' | 'failed';

export interface CheckRunRecord {
  readonly runId: string;
  readonly state: CheckRunState;
  readonly checkId: string | null;
  readonly error: string | null;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;

  // Tenants and who may act for them.
  createTenant(slug: string, name: string): Promise<Tenant>;
  getTenant(tenantId: number): Promise<Tenant | null>;
  listTenants(): Promise<readonly Tenant[]>;
  countTenants(): Promise<number>;
  createApiKey(tenantId: number, role: Role, label: string): Promise<{ info: ApiKeyInfo; key: string }>;
  listApiKeys(tenantId: number): Promise<readonly ApiKeyInfo[]>;
  revokeApiKey(tenantId: number, keyId: string): Promise<boolean>;
  authenticateApiKey(key: string): Promise<Principal | null>;
  createUser(tenantId: number, email: string, password: string, role: Role): Promise<UserInfo>;
  listUsers(tenantId: number): Promise<readonly UserInfo[]>;
  authenticatePassword(email: string, password: string): Promise<Principal | null>;
  createSession(principal: Principal, ttlMs: number): Promise<string>;
  authenticateSession(token: string): Promise<Principal | null>;
  deleteSession(token: string): Promise<void>;
  /** Counts one hit in a fixed window shared by every server process; returns the count so far. */
  hitRateLimit(bucket: string, windowMs: number, nowMs: number): Promise<number>;

  // Runs.
  ingest(tenantId: number, input: IngestInput, nowMs: number): Promise<IngestResult>;
  listRuns(tenantId: number, filter: RunFilter): Promise<RunPage>;
  getRun(tenantId: number, runId: string): Promise<RunDetail | null>;
  listEvents(tenantId: number, runId: string, query: EventQuery): Promise<EventPage | null>;
  /** Every event of a run of the given kinds, up to `cap`, in seq order (for views computed from events). */
  runEvents(tenantId: number, runId: string, kinds: readonly RunEvent['kind'][], cap: number): Promise<readonly RunEvent[] | null>;
  timeline(tenantId: number, runId: string, buckets: number): Promise<Timeline | null>;
  /** Runs of the same job as `runId`, newest first, up to and including it. */
  jobRuns(tenantId: number, runId: string, limit: number): Promise<readonly JobRunRef[] | null>;
  /** Every distinct destination of a stored run (for recommendations and replay). */
  runEventsByPk(tenantId: number, runPk: number, kinds: readonly RunEvent['kind'][], cap: number): Promise<readonly RunEvent[]>;

  // Policy store.
  putPolicy(tenantId: number, name: string, fields: PolicyFields, by: string, nowMs: number, expectedVersion?: number): Promise<StoredPolicy>;
  getPolicy(tenantId: number, name: string): Promise<StoredPolicy | null>;
  listPolicies(tenantId: number): Promise<readonly StoredPolicy[]>;
  deletePolicy(tenantId: number, name: string): Promise<boolean>;
  attachPolicy(tenantId: number, scope: PolicyScope, policy: string, nowMs: number): Promise<PolicyAttachment>;
  detachPolicy(tenantId: number, scope: PolicyScope): Promise<boolean>;
  listAttachments(tenantId: number): Promise<readonly PolicyAttachment[]>;
  resolvePolicy(tenantId: number, query: ResolveQuery): Promise<ResolvedPolicy | null>;

  // Global block list (one for the whole service).
  addBlockEntry(entry: BlockListEntry, by: string, nowMs: number): Promise<StoredBlockEntry>;
  /** Throws RW_NOT_FOUND when there is no active entry with that id. */
  retireBlockEntry(id: number, by: string, nowMs: number): Promise<StoredBlockEntry>;
  blockList(includeRetired: boolean): Promise<BlockListSnapshot>;
  blockListVersion(): Promise<number>;

  // Fleet.
  fleetAlerts(sinceMs: number): Promise<readonly FleetAlert[]>;

  // GitHub check runs: one claim per run, so only one server process posts it.
  claimCheckRun(tenantId: number, runId: string, nowMs: number): Promise<boolean>;
  finishCheckRun(tenantId: number, runId: string, outcome: { state: 'posted' | 'failed'; checkId?: string; error?: string }, nowMs: number): Promise<void>;
  getCheckRun(tenantId: number, runId: string): Promise<CheckRunRecord | null>;
}
