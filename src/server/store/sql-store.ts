/**
 * The store, written once over the SqlDriver interface; SQLite and PostgreSQL
 * differ only in their driver. Every query on tenant data has
 * `tenant_id = ?` in it; there is no method that reads a run, event, policy
 * or key without a tenant id.
 */
import type { BlockListEntry, EgressMode, RunEvent, Severity, Verdict } from '../../protocol/index.js';
import { RunwallError } from '../../protocol/index.js';
import {
  DUMMY_PASSWORD_HASH,
  hashPassword,
  newApiKey,
  newSessionToken,
  parseApiKey,
  sameHash,
  sha256Hex,
  verifyPassword,
} from '../auth/secrets.js';
import {
  eventDestination,
  eventVerdict,
  isoOrNull,
  jobIdentity,
  jobKey,
  parseTimeMs,
  verdictOfRank,
  verdictRank,
} from '../run-facts.js';
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from './driver.js';
import { migrate, type MigrationOutcome } from './migrations.js';
import {
  isRole,
  type ApiKeyInfo,
  type BlockListSnapshot,
  type CheckRunRecord,
  type Cursor,
  type EventPage,
  type EventQuery,
  type FleetAlert,
  type IngestInput,
  type IngestResult,
  type JobRunRef,
  type PolicyAttachment,
  type PolicyFields,
  type PolicyScope,
  type Principal,
  type ResolveQuery,
  type ResolvedPolicy,
  type ReportWithoutEvents,
  type Role,
  type RunDetail,
  type RunFilter,
  type RunListItem,
  type RunPage,
  type StoredBlockEntry,
  type StoredDetection,
  type StoredPolicy,
  type Store,
  type Tenant,
  type Timeline,
  type UserInfo,
} from './types.js';

export interface StoreOptions {
  /** A new destination seen by this many tenants within `fleetWindowMs` is a fleet alert. */
  readonly fleetThreshold: number;
  readonly fleetWindowMs: number;
}

export const DEFAULT_STORE_OPTIONS: StoreOptions = { fleetThreshold: 3, fleetWindowMs: 60 * 60 * 1000 };

const RUN_COLUMNS =
  'pk, run_id, surface, host, repo, workflow, job, mode, exit_code, started_ms, ended_ms, verdict_rank, events, allowed, blocked, attack_blocked, audit, detections, has_report';

const EVENT_COLUMNS = ['run_pk', 'seq', 'tenant_id', 'kind', 'time_ms', 'verdict', 'dest', 'body'] as const;

function num(value: SqlValue | undefined): number {
  return typeof value === 'number' ? value : Number(value ?? 0);
}

function str(value: SqlValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

function iso(value: SqlValue | undefined): string {
  return new Date(num(value)).toISOString();
}

function role(value: SqlValue | undefined): Role {
  const text = String(value);
  if (!isRole(text)) throw new RunwallError('RW_DATABASE_FAILED', `stored role '${text}' is not a runwall role`);
  return text;
}

function runItem(row: SqlRow): RunListItem {
  const mode = str(row.mode);
  return {
    runId: String(row.run_id),
    surface: str(row.surface),
    host: str(row.host),
    repo: str(row.repo),
    workflow: str(row.workflow),
    job: str(row.job),
    mode: mode === 'audit' || mode === 'block' ? mode : null,
    startedAt: iso(row.started_ms),
    endedAt: isoOrNull(row.ended_ms === null ? null : num(row.ended_ms)),
    exitCode: row.exit_code === null ? null : num(row.exit_code),
    verdict: verdictOfRank(num(row.verdict_rank)),
    counts: {
      events: num(row.events),
      allowed: num(row.allowed),
      blocked: num(row.blocked),
      attackBlocked: num(row.attack_blocked),
      audit: num(row.audit),
      detections: num(row.detections),
    },
    complete: num(row.has_report) === 1,
  };
}

function blockEntry(row: SqlRow): StoredBlockEntry {
  const source = str(row.source);
  return {
    id: num(row.id),
    kind: String(row.kind) as BlockListEntry['kind'],
    value: String(row.value),
    text: String(row.text),
    reason: String(row.reason),
    ...(source === null ? {} : { source }),
    addedAt: iso(row.added_ms),
    addedBy: String(row.added_by),
    retiredAt: isoOrNull(row.retired_ms === null ? null : num(row.retired_ms)),
    retiredBy: str(row.retired_by),
  };
}

function policyRow(row: SqlRow): StoredPolicy {
  return {
    name: String(row.name),
    fields: JSON.parse(String(row.body)) as PolicyFields,
    version: num(row.version),
    updatedAt: iso(row.updated_ms),
    updatedBy: String(row.updated_by),
  };
}

function attachmentRow(row: SqlRow): PolicyAttachment {
  const blank = (v: SqlValue | undefined) => (v === '' || v === null || v === undefined ? null : String(v));
  return {
    scope: {
      level: String(row.level) as PolicyScope['level'],
      org: String(row.org),
      repo: blank(row.repo),
      workflow: blank(row.workflow),
      job: blank(row.job),
    },
    policy: String(row.policy_name),
    updatedAt: iso(row.updated_ms),
  };
}

function eventRow(row: SqlRow): RunEvent {
  return JSON.parse(String(row.body)) as RunEvent;
}

/** Cheap `IN (?, ?, ?)`. */
function marks(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  private constructor(
    private readonly db: SqlDriver,
    private readonly options: StoreOptions,
  ) {
    this.dialect = db.dialect;
  }

  /** Opens the store and brings its schema up to date. */
  static async open(driver: SqlDriver, options: Partial<StoreOptions> = {}): Promise<{ store: SqlStore; migrations: MigrationOutcome }> {
    const migrations = await migrate(driver);
    return { store: new SqlStore(driver, { ...DEFAULT_STORE_OPTIONS, ...options }), migrations };
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- tenants, keys, users, sessions ----

  async createTenant(slug: string, name: string): Promise<Tenant> {
    const now = Date.now();
    // ON CONFLICT rather than a prior SELECT: two servers creating the same tenant get one row and one RW_CONFLICT.
    const rows = await this.db.all('INSERT INTO tenants (slug, name, created_ms) VALUES (?, ?, ?) ON CONFLICT (slug) DO NOTHING RETURNING id', [slug, name, now]);
    if (rows.length === 0) throw new RunwallError('RW_CONFLICT', `tenant '${slug}' already exists`);
    return { id: num(rows[0]?.id), slug, name, createdAt: iso(now) };
  }

  async getTenant(tenantId: number): Promise<Tenant | null> {
    const [row] = await this.db.all('SELECT id, slug, name, created_ms FROM tenants WHERE id = ?', [tenantId]);
    return row ? { id: num(row.id), slug: String(row.slug), name: String(row.name), createdAt: iso(row.created_ms) } : null;
  }

  async listTenants(): Promise<readonly Tenant[]> {
    const rows = await this.db.all('SELECT id, slug, name, created_ms FROM tenants ORDER BY id');
    return rows.map((row) => ({ id: num(row.id), slug: String(row.slug), name: String(row.name), createdAt: iso(row.created_ms) }));
  }

  async countTenants(): Promise<number> {
    const [row] = await this.db.all('SELECT count(*) AS n FROM tenants');
    return num(row?.n);
  }

  async createApiKey(tenantId: number, keyRole: Role, label: string): Promise<{ info: ApiKeyInfo; key: string }> {
    const now = Date.now();
    const key = newApiKey();
    await this.db.run(
      'INSERT INTO api_keys (tenant_id, key_id, secret_hash, role, label, created_ms) VALUES (?, ?, ?, ?, ?, ?)',
      [tenantId, key.keyId, key.secretHash, keyRole, label, now],
    );
    return { info: { keyId: key.keyId, role: keyRole, label, createdAt: iso(now), revokedAt: null }, key: key.text };
  }

  async listApiKeys(tenantId: number): Promise<readonly ApiKeyInfo[]> {
    const rows = await this.db.all('SELECT key_id, role, label, created_ms, revoked_ms FROM api_keys WHERE tenant_id = ? ORDER BY id', [tenantId]);
    return rows.map((row) => ({
      keyId: String(row.key_id),
      role: role(row.role),
      label: String(row.label),
      createdAt: iso(row.created_ms),
      revokedAt: isoOrNull(row.revoked_ms === null ? null : num(row.revoked_ms)),
    }));
  }

  async revokeApiKey(tenantId: number, keyId: string): Promise<boolean> {
    const changed = await this.db.run('UPDATE api_keys SET revoked_ms = ? WHERE tenant_id = ? AND key_id = ? AND revoked_ms IS NULL', [
      Date.now(),
      tenantId,
      keyId,
    ]);
    if (changed > 0) {
      // Sessions opened with the key end with it.
      await this.db.run('DELETE FROM sessions WHERE tenant_id = ? AND api_key_id IN (SELECT id FROM api_keys WHERE tenant_id = ? AND key_id = ?)', [
        tenantId,
        tenantId,
        keyId,
      ]);
    }
    return changed > 0;
  }

  async authenticateApiKey(text: string): Promise<Principal | null> {
    const parsed = parseApiKey(text);
    if (!parsed) return null;
    const [row] = await this.db.all(
      `SELECT k.id, k.tenant_id, k.key_id, k.secret_hash, k.role, k.label, k.revoked_ms, t.slug
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_id = ?`,
      [parsed.keyId],
    );
    // Hash even when the key id is unknown, so timing says nothing about which ids exist.
    const presented = sha256Hex(parsed.secret);
    const stored = row ? String(row.secret_hash) : sha256Hex('no such key');
    if (!sameHash(presented, stored) || !row || row.revoked_ms !== null) return null;
    return {
      tenantId: num(row.tenant_id),
      tenantSlug: String(row.slug),
      role: role(row.role),
      name: `key:${String(row.label)}`,
      via: 'api-key',
      keyId: String(row.key_id),
    };
  }

  async createUser(tenantId: number, email: string, password: string, userRole: Role): Promise<UserInfo> {
    const now = Date.now();
    const normal = email.trim().toLowerCase();
    const hash = await hashPassword(password);
    const rows = await this.db.all(
      'INSERT INTO users (tenant_id, email, password_hash, role, created_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING id',
      [tenantId, normal, hash, userRole, now],
    );
    if (rows.length === 0) throw new RunwallError('RW_CONFLICT', `a user '${normal}' already exists`);
    return { id: num(rows[0]?.id), email: normal, role: userRole, createdAt: iso(now) };
  }

  async listUsers(tenantId: number): Promise<readonly UserInfo[]> {
    const rows = await this.db.all('SELECT id, email, role, created_ms FROM users WHERE tenant_id = ? ORDER BY id', [tenantId]);
    return rows.map((row) => ({ id: num(row.id), email: String(row.email), role: role(row.role), createdAt: iso(row.created_ms) }));
  }

  async authenticatePassword(email: string, password: string): Promise<Principal | null> {
    const [row] = await this.db.all(
      'SELECT u.id, u.tenant_id, u.email, u.password_hash, u.role, t.slug FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.email = ?',
      [email.trim().toLowerCase()],
    );
    const ok = await verifyPassword(password, row ? String(row.password_hash) : DUMMY_PASSWORD_HASH);
    if (!ok || !row) return null;
    return {
      tenantId: num(row.tenant_id),
      tenantSlug: String(row.slug),
      role: role(row.role),
      name: String(row.email),
      via: 'session',
      userId: num(row.id),
    };
  }

  async createSession(principal: Principal, ttlMs: number): Promise<string> {
    const token = newSessionToken();
    const now = Date.now();
    let apiKeyId: number | null = null;
    if (principal.keyId) {
      const [row] = await this.db.all('SELECT id FROM api_keys WHERE tenant_id = ? AND key_id = ?', [principal.tenantId, principal.keyId]);
      apiKeyId = row ? num(row.id) : null;
    }
    await this.db.run(
      'INSERT INTO sessions (token_hash, tenant_id, user_id, api_key_id, role, name, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [sha256Hex(token), principal.tenantId, principal.userId ?? null, apiKeyId, principal.role, principal.name, now, now + ttlMs],
    );
    // Expired sessions are removed by whoever opens the next one: no process-local timer.
    await this.db.run('DELETE FROM sessions WHERE expires_ms < ?', [now]);
    return token;
  }

  async authenticateSession(token: string): Promise<Principal | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const [row] = await this.db.all(
      `SELECT s.tenant_id, s.user_id, s.role, s.name, s.expires_ms, t.slug
         FROM sessions s JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = ?`,
      [sha256Hex(token)],
    );
    if (!row || num(row.expires_ms) < Date.now()) return null;
    return {
      tenantId: num(row.tenant_id),
      tenantSlug: String(row.slug),
      role: role(row.role),
      name: String(row.name),
      via: 'session',
      ...(row.user_id === null ? {} : { userId: num(row.user_id) }),
    };
  }

  async deleteSession(token: string): Promise<void> {
    await this.db.run('DELETE FROM sessions WHERE token_hash = ?', [sha256Hex(token)]);
  }

  async hitRateLimit(bucket: string, windowMs: number, nowMs: number): Promise<number> {
    const window = Math.floor(nowMs / windowMs) * windowMs;
    const rows = await this.db.all(
      `INSERT INTO rate_limits (bucket, window_ms, count) VALUES (?, ?, 1)
         ON CONFLICT (bucket, window_ms) DO UPDATE SET count = rate_limits.count + 1 RETURNING count`,
      [bucket, window],
    );
    // Old windows are swept by the callers themselves, now and then.
    if (nowMs % 97 === 0) await this.db.run('DELETE FROM rate_limits WHERE window_ms < ?', [nowMs - 24 * 3600_000]);
    return num(rows[0]?.count);
  }

  // ---- runs ----

  private async findRun(tx: SqlExecutor, tenantId: number, runId: string): Promise<SqlRow | undefined> {
    const [row] = await tx.all(`SELECT ${RUN_COLUMNS}, job_key FROM runs WHERE tenant_id = ? AND run_id = ?`, [tenantId, runId]);
    return row;
  }

  async ingest(tenantId: number, input: IngestInput, nowMs: number): Promise<IngestResult> {
    // Everything an upload needs from the events is computed before the transaction opens.
    const rows: SqlValue[][] = [];
    let firstEventMs: number | null = null;
    let lastEventMs: number | null = null;
    for (const event of input.events) {
      const timeMs = parseTimeMs(event.time);
      if (timeMs !== null) {
        if (firstEventMs === null || timeMs < firstEventMs) firstEventMs = timeMs;
        if (lastEventMs === null || timeMs > lastEventMs) lastEventMs = timeMs;
      }
      rows.push([0, event.seq, tenantId, event.kind, timeMs, eventVerdict(event), eventDestination(event), JSON.stringify(event)]);
    }
    const metadata = input.report?.run ?? input.metadata;
    const identity = jobIdentity(metadata);
    const key = jobKey(identity);

    return this.db.transaction(async (tx) => {
      // Insert-or-find in one step: two parts of a new run may arrive at once, the second waits for the first's row.
      const startedMs = parseTimeMs(metadata?.startedAt) ?? firstEventMs ?? nowMs;
      const created =
        (await tx.run(
          `INSERT INTO runs (tenant_id, run_id, started_ms, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, run_id) DO NOTHING`,
          [tenantId, input.runId, startedMs, nowMs, nowMs],
        )) > 0;
      const run = await this.findRun(tx, tenantId, input.runId);
      if (!run) throw new RunwallError('RW_DATABASE_FAILED', `run ${input.runId} vanished while it was written`);
      const runPk = num(run.pk);
      // Events stored before the run's job was known have not been compared with the job's baseline yet.
      const backfill = run.job_key === null && num(run.events) > 0;
      // A whole report's metadata wins over what event batches said; batches fill in what is missing.
      if (metadata && (input.report || num(run.has_report) === 0)) {
        await tx.run(
          `UPDATE runs SET surface = ?, host = ?, repo = ?, workflow = ?, job = ?, job_key = ?, ci_run_id = ?, sha = ?, ref = ?,
             exit_code = ?, started_ms = ?, ended_ms = ?, updated_ms = ? WHERE tenant_id = ? AND pk = ?`,
          [
            metadata.surface,
            metadata.host,
            identity.repo,
            identity.workflow,
            identity.job,
            key,
            metadata.ci?.runId ?? null,
            metadata.ci?.sha ?? null,
            metadata.ci?.ref ?? null,
            metadata.exitCode ?? null,
            startedMs,
            parseTimeMs(metadata.endedAt),
            nowMs,
            tenantId,
            runPk,
          ],
        );
      } else if (!metadata && num(run.has_report) === 0 && firstEventMs !== null && firstEventMs < num(run.started_ms)) {
        // A run known only from event batches starts at its earliest event.
        await tx.run('UPDATE runs SET started_ms = ? WHERE tenant_id = ? AND pk = ?', [firstEventMs, tenantId, runPk]);
      }

      let rank = 0;
      if (input.report) {
        rank = verdictRank(input.report.summary.verdict);
        await tx.run('UPDATE runs SET report = ?, has_report = 1, mode = ? WHERE tenant_id = ? AND pk = ?', [
          JSON.stringify(input.report),
          input.report.policy.egressPolicy,
          tenantId,
          runPk,
        ]);
      }

      for (const row of rows) row[0] = runPk;
      const addedIndexes = await tx.insertMany('events', EVENT_COLUMNS, rows, '(run_pk, seq)');
      const delta = { allowed: 0, blocked: 0, attackBlocked: 0, audit: 0, detections: 0 };
      const addedDestinations = new Map<string, RunEvent>();
      for (const index of addedIndexes) {
        const event = input.events[index] as RunEvent;
        const verdict = eventVerdict(event);
        if (verdict) {
          rank = Math.max(rank, verdictRank(verdict));
          if (verdict === 'allowed') delta.allowed++;
          else if (verdict === 'blocked') delta.blocked++;
          else if (verdict === 'attack-blocked') delta.attackBlocked++;
          else delta.audit++;
        }
        if (event.kind === 'detection') delta.detections++;
        const destination = eventDestination(event);
        if (destination !== null && !addedDestinations.has(destination)) addedDestinations.set(destination, event);
      }

      // Baselines: which destinations has this job never reached before?
      const anomalies: string[] = [];
      const fleetAlerts: string[] = [];
      if (key !== null) {
        let candidates = addedDestinations;
        if (backfill) {
          // The job became known only now: every destination the run already stored counts.
          candidates = new Map(addedDestinations);
          const stored = await tx.all('SELECT dest, min(seq) AS seq FROM events WHERE tenant_id = ? AND run_pk = ? AND dest IS NOT NULL GROUP BY dest', [
            tenantId,
            runPk,
          ]);
          for (const row of stored) {
            const dest = String(row.dest);
            if (candidates.has(dest)) continue;
            const [first] = await tx.all('SELECT body FROM events WHERE tenant_id = ? AND run_pk = ? AND seq = ?', [tenantId, runPk, num(row.seq)]);
            if (first) candidates.set(dest, eventRow(first));
          }
        }
        if (candidates.size > 0) {
          const list = [...candidates.keys()];
          const fresh = await tx.insertMany(
            'job_destinations',
            ['tenant_id', 'job_key', 'destination', 'first_run_pk', 'first_seen_ms'],
            list.map((dest) => [tenantId, key, dest, runPk, nowMs]),
            '(tenant_id, job_key, destination)',
          );
          // A job's first run has no baseline: nothing it reaches is "new". Counted only when something is new (rare).
          const [previous] =
            fresh.length > 0
              ? await tx.all('SELECT count(*) AS n FROM runs WHERE tenant_id = ? AND job_key = ? AND pk <> ? AND events > 0', [tenantId, key, runPk])
              : [];
          const previousRuns = num(previous?.n);
          if (previousRuns > 0) {
            for (const index of fresh) {
              const dest = list[index] as string;
              const first = candidates.get(dest) as RunEvent;
              const added = await this.addAnomaly(tx, tenantId, runPk, dest, first, identity, previousRuns, nowMs);
              if (!added) continue;
              anomalies.push(dest);
              delta.detections++;
              if (await this.sightFleet(tx, tenantId, dest, nowMs)) fleetAlerts.push(dest);
            }
          }
        }
      }

      const [after] = await tx.all(
        `UPDATE runs SET events = events + ?, allowed = allowed + ?, blocked = blocked + ?, attack_blocked = attack_blocked + ?,
           audit = audit + ?, detections = detections + ?,
           verdict_rank = CASE WHEN verdict_rank < ? THEN ? ELSE verdict_rank END,
           ended_ms = CASE WHEN ended_ms IS NULL OR ended_ms < ? THEN ? ELSE ended_ms END,
           updated_ms = ? WHERE tenant_id = ? AND pk = ? RETURNING verdict_rank`,
        [
          addedIndexes.length,
          delta.allowed,
          delta.blocked,
          delta.attackBlocked,
          delta.audit,
          delta.detections,
          rank,
          rank,
          lastEventMs ?? 0,
          lastEventMs,
          nowMs,
          tenantId,
          runPk,
        ],
      );
      return {
        runId: input.runId,
        created,
        received: input.events.length,
        added: addedIndexes.length,
        duplicates: input.events.length - addedIndexes.length,
        anomalies,
        fleetAlerts,
        verdict: verdictOfRank(num(after?.verdict_rank)),
      };
    });
  }

  private async addAnomaly(
    tx: SqlExecutor,
    tenantId: number,
    runPk: number,
    destination: string,
    first: RunEvent,
    identity: ReturnType<typeof jobIdentity>,
    previousRuns: number,
    nowMs: number,
  ): Promise<boolean> {
    const evidence = {
      destination,
      firstSeq: first.seq,
      ...(first.process?.exe ? { process: first.process.exe } : {}),
      ...(first.step ? { step: first.step } : {}),
      repo: identity.repo,
      workflow: identity.workflow,
      job: identity.job,
      previousRuns,
    };
    const changed = await tx.run(
      `INSERT INTO run_detections (run_pk, detection_id, subject, tenant_id, severity, title, evidence, remedy, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_pk, detection_id, subject) DO NOTHING`,
      [
        runPk,
        'anomalous-endpoint',
        destination,
        tenantId,
        'medium' satisfies Severity,
        `New destination for this job: ${destination}`,
        JSON.stringify(evidence),
        `${destination} was never reached in the ${previousRuns} earlier run(s) of this job. If it is expected, add it to allowed-endpoints; if not, find the step and process that reached it.`,
        nowMs,
      ],
    );
    return changed > 0;
  }

  /** Records that a tenant saw a new destination; true when this sighting makes it a fleet alert. */
  private async sightFleet(tx: SqlExecutor, tenantId: number, destination: string, nowMs: number): Promise<boolean> {
    await tx.run(
      `INSERT INTO fleet_sightings (destination, tenant_id, seen_ms) VALUES (?, ?, ?)
         ON CONFLICT (destination, tenant_id) DO UPDATE SET seen_ms = excluded.seen_ms`,
      [destination, tenantId, nowMs],
    );
    const [row] = await tx.all('SELECT count(*) AS n, min(seen_ms) AS first FROM fleet_sightings WHERE destination = ? AND seen_ms >= ?', [
      destination,
      nowMs - this.options.fleetWindowMs,
    ]);
    const tenants = num(row?.n);
    if (tenants < this.options.fleetThreshold) return false;
    const changed = await tx.run(
      `INSERT INTO fleet_alerts (destination, tenants, first_seen_ms, last_seen_ms, created_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (destination) DO UPDATE SET tenants = excluded.tenants, last_seen_ms = excluded.last_seen_ms`,
      [destination, tenants, num(row?.first), nowMs, nowMs],
    );
    return changed > 0;
  }

  async listRuns(tenantId: number, filter: RunFilter): Promise<RunPage> {
    const where = ['tenant_id = ?'];
    const params: SqlValue[] = [tenantId];
    if (filter.repo !== undefined && filter.workflow !== undefined && filter.job !== undefined) {
      // One job exactly: its key has an index of its own, newest first.
      where.push('job_key = ?');
      params.push(jobKey({ repo: filter.repo, workflow: filter.workflow, job: filter.job }));
    } else {
      if (filter.repo !== undefined) (where.push('repo = ?'), params.push(filter.repo));
      if (filter.workflow !== undefined) (where.push('workflow = ?'), params.push(filter.workflow));
      if (filter.job !== undefined) (where.push('job = ?'), params.push(filter.job));
    }
    if (filter.verdict !== undefined) (where.push('verdict_rank = ?'), params.push(verdictRank(filter.verdict)));
    if (filter.fromMs !== undefined) (where.push('started_ms >= ?'), params.push(filter.fromMs));
    if (filter.toMs !== undefined) (where.push('started_ms < ?'), params.push(filter.toMs));
    if (filter.cursor) {
      where.push('(started_ms < ? OR (started_ms = ? AND pk < ?))');
      params.push(filter.cursor.startedMs, filter.cursor.startedMs, filter.cursor.pk);
    }
    params.push(filter.limit + 1);
    const rows = await this.db.all(`SELECT ${RUN_COLUMNS} FROM runs WHERE ${where.join(' AND ')} ORDER BY started_ms DESC, pk DESC LIMIT ?`, params);
    const page = rows.slice(0, filter.limit);
    const last = page[page.length - 1];
    const next: Cursor | null = rows.length > filter.limit && last ? { startedMs: num(last.started_ms), pk: num(last.pk) } : null;
    return { runs: page.map(runItem), next };
  }

  async getRun(tenantId: number, runId: string): Promise<RunDetail | null> {
    const [row] = await this.db.all(`SELECT ${RUN_COLUMNS}, sha, ref, ci_run_id, report FROM runs WHERE tenant_id = ? AND run_id = ?`, [tenantId, runId]);
    if (!row) return null;
    const runPk = num(row.pk);
    const detections: StoredDetection[] = [];
    const serverRows = await this.db.all(
      'SELECT detection_id, severity, title, evidence, remedy, created_ms FROM run_detections WHERE tenant_id = ? AND run_pk = ? ORDER BY created_ms, subject',
      [tenantId, runPk],
    );
    for (const d of serverRows) {
      detections.push({
        id: String(d.detection_id),
        severity: String(d.severity) as Severity,
        title: String(d.title),
        evidence: JSON.parse(String(d.evidence)) as Record<string, unknown>,
        remedy: String(d.remedy),
        source: 'server',
        seq: null,
        time: iso(d.created_ms),
      });
    }
    const agentRows = await this.db.all("SELECT body FROM events WHERE tenant_id = ? AND run_pk = ? AND kind = 'detection' ORDER BY seq LIMIT 1000", [
      tenantId,
      runPk,
    ]);
    for (const r of agentRows) {
      const event = eventRow(r);
      if (event.kind !== 'detection') continue;
      detections.push({
        id: event.id,
        severity: event.severity,
        title: event.title,
        evidence: event.evidence,
        remedy: event.remedy,
        source: 'agent',
        seq: event.seq,
        time: event.time,
      });
    }
    return {
      ...runItem(row),
      sha: str(row.sha),
      ref: str(row.ref),
      ciRunId: str(row.ci_run_id),
      report: row.report === null ? null : (JSON.parse(String(row.report)) as ReportWithoutEvents),
      detections,
    };
  }

  private async runPk(tenantId: number, runId: string): Promise<SqlRow | undefined> {
    const [row] = await this.db.all('SELECT pk, started_ms, ended_ms, job_key FROM runs WHERE tenant_id = ? AND run_id = ?', [tenantId, runId]);
    return row;
  }

  async listEvents(tenantId: number, runId: string, query: EventQuery): Promise<EventPage | null> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return null;
    const where = ['tenant_id = ?', 'run_pk = ?', 'seq > ?'];
    const params: SqlValue[] = [tenantId, num(run.pk), query.afterSeq];
    if (query.kinds && query.kinds.length > 0) {
      where.push(`kind IN (${marks(query.kinds.length)})`);
      params.push(...query.kinds);
    }
    if (query.verdict) (where.push('verdict = ?'), params.push(query.verdict));
    params.push(query.limit + 1);
    const rows = await this.db.all(`SELECT seq, body FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, params);
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return { events: page.map(eventRow), nextAfter: rows.length > query.limit && last ? num(last.seq) : null };
  }

  async runEvents(tenantId: number, runId: string, kinds: readonly RunEvent['kind'][], cap: number): Promise<readonly RunEvent[] | null> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return null;
    return this.runEventsByPk(tenantId, num(run.pk), kinds, cap);
  }

  async runEventsByPk(tenantId: number, runPk: number, kinds: readonly RunEvent['kind'][], cap: number): Promise<readonly RunEvent[]> {
    if (kinds.length === 0) return [];
    const rows = await this.db.all(
      `SELECT body FROM events WHERE tenant_id = ? AND run_pk = ? AND kind IN (${marks(kinds.length)}) ORDER BY seq LIMIT ?`,
      [tenantId, runPk, ...kinds, cap],
    );
    return rows.map(eventRow);
  }

  async timeline(tenantId: number, runId: string, buckets: number): Promise<Timeline | null> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return null;
    const [range] = await this.db.all('SELECT min(time_ms) AS lo, max(time_ms) AS hi FROM events WHERE tenant_id = ? AND run_pk = ?', [
      tenantId,
      num(run.pk),
    ]);
    const lo = range?.lo === null || range?.lo === undefined ? num(run.started_ms) : num(range.lo);
    const hi = range?.hi === null || range?.hi === undefined ? lo : num(range.hi);
    const bucketMs = Math.max(1, Math.ceil((hi - lo + 1) / buckets));
    const rows = await this.db.all(
      `SELECT (time_ms - ?) / ? AS b, verdict, count(*) AS n FROM events
         WHERE tenant_id = ? AND run_pk = ? AND time_ms IS NOT NULL GROUP BY 1, 2`,
      [lo, bucketMs, tenantId, num(run.pk)],
    );
    const out = Array.from({ length: buckets }, (_, index) => ({ index, allowed: 0, blocked: 0, attackBlocked: 0, audit: 0, other: 0 }));
    for (const row of rows) {
      const bucket = out[Math.min(buckets - 1, Math.max(0, Math.floor(num(row.b))))];
      if (!bucket) continue;
      const n = num(row.n);
      const verdict = str(row.verdict) as Verdict | null;
      if (verdict === 'allowed') bucket.allowed += n;
      else if (verdict === 'blocked') bucket.blocked += n;
      else if (verdict === 'attack-blocked') bucket.attackBlocked += n;
      else if (verdict === 'audit') bucket.audit += n;
      else bucket.other += n;
    }
    return { startMs: lo, bucketMs, buckets: out };
  }

  async jobRuns(tenantId: number, runId: string, limit: number): Promise<readonly JobRunRef[] | null> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return null;
    const rows =
      run.job_key === null
        ? await this.db.all('SELECT pk, run_id, started_ms, verdict_rank, mode, report FROM runs WHERE tenant_id = ? AND pk = ?', [tenantId, num(run.pk)])
        : await this.db.all(
            `SELECT pk, run_id, started_ms, verdict_rank, mode, report FROM runs WHERE tenant_id = ? AND job_key = ?
               AND (started_ms < ? OR (started_ms = ? AND pk <= ?)) ORDER BY started_ms DESC, pk DESC LIMIT ?`,
            [tenantId, String(run.job_key), num(run.started_ms), num(run.started_ms), num(run.pk), limit],
          );
    return rows.map((row) => {
      const report = row.report === null ? null : (JSON.parse(String(row.report)) as ReportWithoutEvents);
      const mode = str(row.mode);
      return {
        pk: num(row.pk),
        runId: String(row.run_id),
        startedAt: iso(row.started_ms),
        verdict: verdictOfRank(num(row.verdict_rank)),
        policyAllowed: report ? report.policy.allowedEndpoints.map((e) => e.text) : null,
        mode: mode === 'audit' || mode === 'block' ? (mode as EgressMode) : null,
      };
    });
  }

  // ---- policy store ----

  async putPolicy(tenantId: number, name: string, fields: PolicyFields, by: string, nowMs: number, expectedVersion?: number): Promise<StoredPolicy> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.all('SELECT version FROM policies WHERE tenant_id = ? AND name = ?', [tenantId, name]);
      const current = row ? num(row.version) : 0;
      if (expectedVersion !== undefined && expectedVersion !== current) {
        throw new RunwallError('RW_CONFLICT', `policy '${name}' is at version ${current}, not ${expectedVersion}: reload it and apply your change again`, {
          version: current,
        });
      }
      const version = current + 1;
      if (row) {
        await tx.run('UPDATE policies SET body = ?, version = ?, updated_ms = ?, updated_by = ? WHERE tenant_id = ? AND name = ?', [
          JSON.stringify(fields),
          version,
          nowMs,
          by,
          tenantId,
          name,
        ]);
      } else {
        await tx.run('INSERT INTO policies (tenant_id, name, body, version, updated_ms, updated_by) VALUES (?, ?, ?, ?, ?, ?)', [
          tenantId,
          name,
          JSON.stringify(fields),
          version,
          nowMs,
          by,
        ]);
      }
      return { name, fields, version, updatedAt: iso(nowMs), updatedBy: by };
    });
  }

  async getPolicy(tenantId: number, name: string): Promise<StoredPolicy | null> {
    const [row] = await this.db.all('SELECT name, body, version, updated_ms, updated_by FROM policies WHERE tenant_id = ? AND name = ?', [tenantId, name]);
    return row ? policyRow(row) : null;
  }

  async listPolicies(tenantId: number): Promise<readonly StoredPolicy[]> {
    const rows = await this.db.all('SELECT name, body, version, updated_ms, updated_by FROM policies WHERE tenant_id = ? ORDER BY name', [tenantId]);
    return rows.map(policyRow);
  }

  async deletePolicy(tenantId: number, name: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [used] = await tx.all('SELECT count(*) AS n FROM policy_attachments WHERE tenant_id = ? AND policy_name = ?', [tenantId, name]);
      if (num(used?.n) > 0) {
        throw new RunwallError('RW_CONFLICT', `policy '${name}' is attached at ${num(used?.n)} scope(s): detach it first`);
      }
      return (await tx.run('DELETE FROM policies WHERE tenant_id = ? AND name = ?', [tenantId, name])) > 0;
    });
  }

  async attachPolicy(tenantId: number, scope: PolicyScope, policy: string, nowMs: number): Promise<PolicyAttachment> {
    return this.db.transaction(async (tx) => {
      const [exists] = await tx.all('SELECT name FROM policies WHERE tenant_id = ? AND name = ?', [tenantId, policy]);
      if (!exists) throw new RunwallError('RW_NOT_FOUND', `no policy named '${policy}'`);
      await tx.run(
        `INSERT INTO policy_attachments (tenant_id, org, repo, workflow, job, level, policy_name, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (tenant_id, org, repo, workflow, job) DO UPDATE SET policy_name = excluded.policy_name, level = excluded.level, updated_ms = excluded.updated_ms`,
        [tenantId, scope.org, scope.repo ?? '', scope.workflow ?? '', scope.job ?? '', scope.level, policy, nowMs],
      );
      return { scope, policy, updatedAt: iso(nowMs) };
    });
  }

  async detachPolicy(tenantId: number, scope: PolicyScope): Promise<boolean> {
    const changed = await this.db.run('DELETE FROM policy_attachments WHERE tenant_id = ? AND org = ? AND repo = ? AND workflow = ? AND job = ?', [
      tenantId,
      scope.org,
      scope.repo ?? '',
      scope.workflow ?? '',
      scope.job ?? '',
    ]);
    return changed > 0;
  }

  async listAttachments(tenantId: number): Promise<readonly PolicyAttachment[]> {
    const rows = await this.db.all(
      'SELECT org, repo, workflow, job, level, policy_name, updated_ms FROM policy_attachments WHERE tenant_id = ? ORDER BY org, repo, workflow, job',
      [tenantId],
    );
    return rows.map(attachmentRow);
  }

  async resolvePolicy(tenantId: number, query: ResolveQuery): Promise<ResolvedPolicy | null> {
    // Candidates from most to least specific; the first attached one wins.
    const candidates: [string, string, string][] = [];
    if (query.repo && query.workflow && query.job) candidates.push([query.repo, query.workflow, query.job]);
    if (query.repo && query.workflow) candidates.push([query.repo, query.workflow, '']);
    if (query.repo) candidates.push([query.repo, '', '']);
    candidates.push(['', '', '']);
    const where = candidates.map(() => '(repo = ? AND workflow = ? AND job = ?)').join(' OR ');
    const rows = await this.db.all(
      `SELECT a.org, a.repo, a.workflow, a.job, a.level, a.policy_name, a.updated_ms, p.name, p.body, p.version, p.updated_ms AS p_updated_ms, p.updated_by
         FROM policy_attachments a JOIN policies p ON p.tenant_id = a.tenant_id AND p.name = a.policy_name
         WHERE a.tenant_id = ? AND a.org = ? AND (${where})`,
      [tenantId, query.org, ...candidates.flat()],
    );
    const specificity = (row: SqlRow) => (row.job !== '' ? 3 : row.workflow !== '' ? 2 : row.repo !== '' ? 1 : 0);
    const best = rows.sort((a, b) => specificity(b) - specificity(a))[0];
    if (!best) return null;
    return {
      attachment: attachmentRow(best),
      policy: policyRow({ ...best, updated_ms: best.p_updated_ms ?? null }),
    };
  }

  // ---- global block list ----

  private async bumpBlockListVersion(tx: SqlExecutor): Promise<number> {
    const [row] = await tx.all("UPDATE counters SET value = value + 1 WHERE name = 'blocklist_version' RETURNING value");
    return num(row?.value);
  }

  async addBlockEntry(entry: BlockListEntry, by: string, nowMs: number): Promise<StoredBlockEntry> {
    return this.db.transaction(async (tx) => {
      // The counter row is the lock: a concurrent add of the same entry waits here, then sees it.
      const version = await this.bumpBlockListVersion(tx);
      const [active] = await tx.all('SELECT id FROM blocklist_entries WHERE text = ? AND retired_ms IS NULL', [entry.text]);
      if (active) throw new RunwallError('RW_CONFLICT', `'${entry.text}' is already on the block list (entry ${num(active.id)})`, { id: num(active.id) });
      const [row] = await tx.all(
        `INSERT INTO blocklist_entries (kind, value, text, reason, source, added_ms, added_by, added_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           RETURNING id, kind, value, text, reason, source, added_ms, added_by, retired_ms, retired_by`,
        [entry.kind, entry.value, entry.text, entry.reason, entry.source ?? null, nowMs, by, version],
      );
      if (!row) throw new RunwallError('RW_DATABASE_FAILED', 'block-list insert returned nothing');
      return blockEntry(row);
    });
  }

  async retireBlockEntry(id: number, by: string, nowMs: number): Promise<StoredBlockEntry> {
    return this.db.transaction(async (tx) => {
      const version = await this.bumpBlockListVersion(tx);
      const [active] = await tx.all('SELECT id FROM blocklist_entries WHERE id = ? AND retired_ms IS NULL', [id]);
      // Throwing rolls the version bump back: the list did not change.
      if (!active) throw new RunwallError('RW_NOT_FOUND', `no active block-list entry ${id}`);
      const [row] = await tx.all(
        `UPDATE blocklist_entries SET retired_ms = ?, retired_by = ?, retired_version = ? WHERE id = ?
           RETURNING id, kind, value, text, reason, source, added_ms, added_by, retired_ms, retired_by`,
        [nowMs, by, version, id],
      );
      if (!row) throw new RunwallError('RW_DATABASE_FAILED', 'block-list retire returned nothing');
      return blockEntry(row);
    });
  }

  async blockList(includeRetired: boolean): Promise<BlockListSnapshot> {
    // Version and entries in one transaction, so an ETag never names a different list.
    return this.db.transaction(async (tx) => {
      const [counter] = await tx.all("SELECT value FROM counters WHERE name = 'blocklist_version'");
      const rows = await tx.all(
        `SELECT id, kind, value, text, reason, source, added_ms, added_by, retired_ms, retired_by FROM blocklist_entries
           ${includeRetired ? '' : 'WHERE retired_ms IS NULL'} ORDER BY id`,
      );
      return { version: num(counter?.value), entries: rows.map(blockEntry) };
    });
  }

  async blockListVersion(): Promise<number> {
    const [counter] = await this.db.all("SELECT value FROM counters WHERE name = 'blocklist_version'");
    return num(counter?.value);
  }

  // ---- fleet ----

  async fleetAlerts(sinceMs: number): Promise<readonly FleetAlert[]> {
    const rows = await this.db.all(
      'SELECT destination, tenants, first_seen_ms, last_seen_ms FROM fleet_alerts WHERE last_seen_ms >= ? ORDER BY last_seen_ms DESC LIMIT 500',
      [sinceMs],
    );
    return rows.map((row) => ({
      destination: String(row.destination),
      tenants: num(row.tenants),
      firstSeenAt: iso(row.first_seen_ms),
      lastSeenAt: iso(row.last_seen_ms),
    }));
  }

  // ---- GitHub check runs ----

  async claimCheckRun(tenantId: number, runId: string, nowMs: number): Promise<boolean> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return false;
    const changed = await this.db.run(
      `INSERT INTO check_runs (run_pk, tenant_id, state, updated_ms) VALUES (?, ?, 'pending', ?) ON CONFLICT (run_pk) DO NOTHING`,
      [num(run.pk), tenantId, nowMs],
    );
    return changed > 0;
  }

  async finishCheckRun(
    tenantId: number,
    runId: string,
    outcome: { state: 'posted' | 'failed'; checkId?: string; error?: string },
    nowMs: number,
  ): Promise<void> {
    const run = await this.runPk(tenantId, runId);
    if (!run) return;
    await this.db.run('UPDATE check_runs SET state = ?, check_id = ?, error = ?, updated_ms = ? WHERE tenant_id = ? AND run_pk = ?', [
      outcome.state,
      outcome.checkId ?? null,
      outcome.error ?? null,
      nowMs,
      tenantId,
      num(run.pk),
    ]);
  }

  async getCheckRun(tenantId: number, runId: string): Promise<CheckRunRecord | null> {
    const [row] = await this.db.all(
      'SELECT c.state, c.check_id, c.error FROM check_runs c JOIN runs r ON r.pk = c.run_pk WHERE c.tenant_id = ? AND r.tenant_id = ? AND r.run_id = ?',
      [tenantId, tenantId, runId],
    );
    if (!row) return null;
    return { runId, state: String(row.state) as CheckRunRecord['state'], checkId: str(row.check_id), error: str(row.error) };
  }
}
