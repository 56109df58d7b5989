// The store on both databases, against real servers: migrations, keys, sessions, ingest, baselines, policies, block list.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDriver, PostgresDriver, migrate, MIGRATIONS, type SqlStore } from '../../src/server/index.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';
import { destinationEvents, makeReport, withoutEvents } from './helpers/reports.js';
import { freshStore, type Dialect } from './helpers/stores.js';

let pg: TestPostgres | null = null;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const NOW = Date.parse('2026-11-26T13:00:00.000Z');

describe.each<Dialect>(['sqlite', 'postgres'])('store on %s', (dialect) => {
  let store: SqlStore;
  let cleanup: () => Promise<void>;
  let spec: string;

  beforeAll(async () => {
    ({ store, cleanup, spec } = await freshStore(dialect, pg));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('migrates on open, and a second open applies nothing', async () => {
    const driver = dialect === 'sqlite' ? new SqliteDriver(spec.slice('sqlite:'.length)) : new PostgresDriver(spec);
    try {
      const again = await migrate(driver);
      expect(again.applied).toEqual([]);
      expect(again.version).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
      const rows = await driver.all('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await driver.close();
    }
  });

  it('keeps API keys hashed: the key authenticates, a changed or revoked one does not', async () => {
    const tenant = await store.createTenant('keys', 'Keys Inc');
    const { key, info } = await store.createApiKey(tenant.id, 'agent', 'ci');
    const principal = await store.authenticateApiKey(key);
    expect(principal).toMatchObject({ tenantId: tenant.id, role: 'agent', keyId: info.keyId });
    const wrong = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    expect(await store.authenticateApiKey(wrong)).toBeNull();
    expect(await store.authenticateApiKey('not-a-key')).toBeNull();
    const driverRows = await (store as unknown as { db: { all(sql: string): Promise<Record<string, unknown>[]> } }).db.all('SELECT secret_hash FROM api_keys');
    for (const row of driverRows) expect(key).not.toContain(String(row.secret_hash));
    expect(await store.revokeApiKey(tenant.id, info.keyId)).toBe(true);
    expect(await store.authenticateApiKey(key)).toBeNull();
  });

  it('checks passwords with scrypt and keeps sessions in the database', async () => {
    const tenant = await store.createTenant('users', 'Users Inc');
    await store.createUser(tenant.id, 'Ada@Example.test', 'correct horse battery', 'admin');
    expect(await store.authenticatePassword('ada@example.test', 'wrong')).toBeNull();
    expect(await store.authenticatePassword('nobody@example.test', 'correct horse battery')).toBeNull();
    const principal = await store.authenticatePassword('ada@example.test', 'correct horse battery');
    expect(principal).toMatchObject({ tenantId: tenant.id, role: 'admin', name: 'ada@example.test' });
    const token = await store.createSession(principal!, 60_000);
    expect(await store.authenticateSession(token)).toMatchObject({ tenantId: tenant.id, role: 'admin' });
    await store.deleteSession(token);
    expect(await store.authenticateSession(token)).toBeNull();
    const expired = await store.createSession(principal!, -1);
    expect(await store.authenticateSession(expired)).toBeNull();
    await expect(store.createUser(tenant.id, 'ada@example.test', 'x', 'member')).rejects.toMatchObject({ code: 'RW_CONFLICT' });
  });

  it('counts rate-limit hits per window', async () => {
    expect(await store.hitRateLimit('k1', 60_000, NOW)).toBe(1);
    expect(await store.hitRateLimit('k1', 60_000, NOW + 1)).toBe(2);
    expect(await store.hitRateLimit('k2', 60_000, NOW)).toBe(1);
    expect(await store.hitRateLimit('k1', 60_000, NOW + 60_000)).toBe(1);
  });

  it('ingests a report once: a retry adds nothing, counts and verdict come from the events', async () => {
    const tenant = await store.createTenant('ingest', 'Ingest');
    const report = makeReport({ runId: 'r1', destinations: [{ name: 'a.test' }, { name: 'b.test', verdict: 'blocked' }] });
    const first = await store.ingest(tenant.id, { runId: 'r1', report: withoutEvents(report), events: report.events }, NOW);
    expect(first).toMatchObject({ created: true, added: 4, duplicates: 0, verdict: 'blocked' });
    const again = await store.ingest(tenant.id, { runId: 'r1', report: withoutEvents(report), events: report.events }, NOW);
    expect(again).toMatchObject({ created: false, added: 0, duplicates: 4 });
    const run = await store.getRun(tenant.id, 'r1');
    expect(run?.counts).toEqual({ events: 4, allowed: 2, blocked: 2, attackBlocked: 0, audit: 0, detections: 0 });
    expect(run).toMatchObject({ repo: 'acme/app', workflow: 'ci.yml', job: 'build', verdict: 'blocked', complete: true, mode: 'block' });
    expect(run?.report?.policy.allowedEndpoints[0]?.text).toBe('registry.test:443');
  });

  it('loses nothing when a run arrives in parts, out of order and late', async () => {
    const tenant = await store.createTenant('parts', 'Parts');
    const report = makeReport({ runId: 'p1', destinations: [{ name: 'a.test' }, { name: 'b.test' }, { name: 'c.test', verdict: 'attack-blocked' }] });
    const events = report.events;
    // Last batch first, without metadata; then the report with only the first events; then the middle, late.
    await store.ingest(tenant.id, { runId: 'p1', events: events.slice(4) }, NOW);
    const partial = await store.listRuns(tenant.id, { limit: 10 });
    expect(partial.runs[0]).toMatchObject({ runId: 'p1', complete: false, repo: null, verdict: 'attack-blocked' });
    await store.ingest(tenant.id, { runId: 'p1', report: withoutEvents(report), events: events.slice(0, 2) }, NOW);
    await store.ingest(tenant.id, { runId: 'p1', events: events.slice(1, 5) }, NOW);
    const run = await store.getRun(tenant.id, 'p1');
    expect(run?.counts.events).toBe(6);
    expect(run).toMatchObject({ complete: true, repo: 'acme/app', verdict: 'attack-blocked' });
    const page = await store.listEvents(tenant.id, 'p1', { afterSeq: 0, limit: 100 });
    expect(page?.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('pages events by seq and filters them by kind and verdict', async () => {
    const tenant = await store.createTenant('paging', 'Paging');
    const events = destinationEvents(Array.from({ length: 30 }, (_, i) => ({ name: `h${i}.test`, verdict: i % 3 === 0 ? 'blocked' : 'allowed' })));
    await store.ingest(tenant.id, { runId: 'e1', events }, NOW);
    const first = await store.listEvents(tenant.id, 'e1', { afterSeq: 0, limit: 25 });
    expect(first?.events).toHaveLength(25);
    const second = await store.listEvents(tenant.id, 'e1', { afterSeq: first!.nextAfter!, limit: 25 });
    expect(second?.events).toHaveLength(25);
    const third = await store.listEvents(tenant.id, 'e1', { afterSeq: second!.nextAfter!, limit: 25 });
    expect(third?.events).toHaveLength(10);
    expect(third?.nextAfter).toBeNull();
    const blockedDns = await store.listEvents(tenant.id, 'e1', { afterSeq: 0, limit: 100, kinds: ['dns'], verdict: 'blocked' });
    expect(blockedDns?.events).toHaveLength(10);
    const timeline = await store.timeline(tenant.id, 'e1', 10);
    expect(timeline?.buckets.reduce((n, b) => n + b.allowed + b.blocked, 0)).toBe(60);
  });

  it('lists runs newest first with filters and keyset pages', async () => {
    const tenant = await store.createTenant('list', 'List');
    for (let i = 0; i < 25; i++) {
      const report = makeReport({
        runId: `l${i}`,
        repo: i % 2 ? 'acme/odd' : 'acme/even',
        job: i % 5 === 0 ? 'test' : 'build',
        startedAt: new Date(NOW - (25 - i) * 60_000).toISOString(),
        destinations: [{ name: 'x.test', verdict: i % 4 === 0 ? 'blocked' : 'allowed' }],
      });
      await store.ingest(tenant.id, { runId: report.run.runId, report: withoutEvents(report), events: report.events }, NOW);
    }
    const seen: string[] = [];
    let cursor;
    for (let page = 0; page < 10; page++) {
      const result = await store.listRuns(tenant.id, { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...result.runs.map((r) => r.runId));
      if (!result.next) break;
      cursor = result.next;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `l${24 - i}`));
    const odd = await store.listRuns(tenant.id, { limit: 100, repo: 'acme/odd' });
    expect(odd.runs).toHaveLength(12);
    const blocked = await store.listRuns(tenant.id, { limit: 100, verdict: 'blocked' });
    expect(blocked.runs.map((r) => r.runId)).toEqual(['l24', 'l20', 'l16', 'l12', 'l8', 'l4', 'l0']);
    const tests = await store.listRuns(tenant.id, { limit: 100, job: 'test', repo: 'acme/even' });
    expect(tests.runs.map((r) => r.runId)).toEqual(['l20', 'l10', 'l0']);
    const window = await store.listRuns(tenant.id, { limit: 100, fromMs: NOW - 10 * 60_000, toMs: NOW - 5 * 60_000 });
    expect(window.runs.map((r) => r.runId)).toEqual(['l19', 'l18', 'l17', 'l16', 'l15']);
  });

  it('flags a destination never seen in earlier runs of the job, and not the first run', async () => {
    const tenant = await store.createTenant('baseline', 'Baseline');
    const ingest = (runId: string, names: string[], job = 'build') => {
      const report = makeReport({ runId, job, destinations: names.map((name) => ({ name, exe: '/usr/bin/curl' })) });
      return store.ingest(tenant.id, { runId, report: withoutEvents(report), events: report.events }, NOW);
    };
    expect((await ingest('b1', ['registry.test', 'github.test'])).anomalies).toEqual([]);
    expect((await ingest('b2', ['registry.test'])).anomalies).toEqual([]);
    const third = await ingest('b3', ['registry.test', 'api.ipify.test']);
    expect(third.anomalies).toEqual(['api.ipify.test']);
    expect((await ingest('b3', ['registry.test', 'api.ipify.test'])).anomalies).toEqual([]);
    expect((await ingest('other-job', ['api.ipify.test'], 'deploy')).anomalies).toEqual([]);
    const run = await store.getRun(tenant.id, 'b3');
    expect(run?.counts.detections).toBe(1);
    expect(run?.detections[0]).toMatchObject({ id: 'anomalous-endpoint', source: 'server', evidence: { destination: 'api.ipify.test', process: '/usr/bin/curl', previousRuns: 2 } });
  });

  it('raises a fleet alert when several tenants see the same new destination', async () => {
    const tenants = await Promise.all([1, 2, 3].map((i) => store.createTenant(`fleet${i}`, `Fleet ${i}`)));
    const alerts: string[] = [];
    for (const tenant of tenants) {
      for (const [runId, names] of [['f1', ['registry.test']], ['f2', ['registry.test', 'exfil.fleet.test']]] as const) {
        const report = makeReport({ runId, destinations: names.map((name) => ({ name })) });
        const result = await store.ingest(tenant.id, { runId, report: withoutEvents(report), events: report.events }, NOW);
        alerts.push(...result.fleetAlerts);
      }
    }
    expect(alerts).toEqual(['exfil.fleet.test']);
    expect(await store.fleetAlerts(NOW - 1000)).toEqual([expect.objectContaining({ destination: 'exfil.fleet.test', tenants: 3 })]);
  });

  it('resolves the most specific attached policy', async () => {
    const tenant = await store.createTenant('policies', 'Policies');
    const fields = (egressPolicy: 'audit' | 'block', allowed: string[]) => ({
      egressPolicy, allowedEndpoints: allowed, disableFileMonitoring: false, disableSudo: false, disableSudoAndContainers: false, disableTelemetry: false,
    });
    await store.putPolicy(tenant.id, 'org-default', fields('audit', []), 'test', NOW);
    await store.putPolicy(tenant.id, 'app-build', fields('block', ['registry.test:443']), 'test', NOW);
    await store.putPolicy(tenant.id, 'app', fields('block', []), 'test', NOW);
    await store.attachPolicy(tenant.id, { level: 'org', org: 'acme', repo: null, workflow: null, job: null }, 'org-default', NOW);
    await store.attachPolicy(tenant.id, { level: 'repo', org: 'acme', repo: 'acme/app', workflow: null, job: null }, 'app', NOW);
    await store.attachPolicy(tenant.id, { level: 'job', org: 'acme', repo: 'acme/app', workflow: 'ci.yml', job: 'build' }, 'app-build', NOW);
    const resolve = async (q: { org: string; repo?: string; workflow?: string; job?: string }) => (await store.resolvePolicy(tenant.id, q))?.policy.name ?? null;
    expect(await resolve({ org: 'acme', repo: 'acme/app', workflow: 'ci.yml', job: 'build' })).toBe('app-build');
    expect(await resolve({ org: 'acme', repo: 'acme/app', workflow: 'ci.yml', job: 'test' })).toBe('app');
    expect(await resolve({ org: 'acme', repo: 'acme/lib', workflow: 'ci.yml', job: 'build' })).toBe('org-default');
    expect(await resolve({ org: 'other' })).toBeNull();
    await expect(store.putPolicy(tenant.id, 'app', fields('audit', []), 'test', NOW, 7)).rejects.toMatchObject({ code: 'RW_CONFLICT' });
    expect((await store.putPolicy(tenant.id, 'app', fields('audit', []), 'test', NOW, 1)).version).toBe(2);
    await expect(store.deletePolicy(tenant.id, 'app')).rejects.toMatchObject({ code: 'RW_CONFLICT' });
  });

  it('versions the global block list on every change', async () => {
    const before = await store.blockListVersion();
    const entry = await store.addBlockEntry({ kind: 'domain', value: 'evil.test', text: 'evil.test', reason: 'exfiltration', source: 'test' }, 'op', NOW);
    expect(await store.blockListVersion()).toBe(before + 1);
    await expect(store.addBlockEntry({ kind: 'domain', value: 'evil.test', text: 'evil.test', reason: 'again' }, 'op', NOW)).rejects.toMatchObject({ code: 'RW_CONFLICT' });
    expect(await store.blockListVersion()).toBe(before + 1);
    const list = await store.blockList(false);
    expect(list.entries.map((e) => e.text)).toContain('evil.test');
    await store.retireBlockEntry(entry.id, 'op', NOW);
    await expect(store.retireBlockEntry(entry.id, 'op', NOW)).rejects.toMatchObject({ code: 'RW_NOT_FOUND' });
    const after = await store.blockList(false);
    expect(after.version).toBe(before + 2);
    expect(after.entries.map((e) => e.text)).not.toContain('evil.test');
    expect((await store.blockList(true)).entries.find((e) => e.id === entry.id)?.retiredBy).toBe('op');
  });

  it('scopes every read by tenant', async () => {
    const a = await store.createTenant('scope-a', 'A');
    const b = await store.createTenant('scope-b', 'B');
    const report = makeReport({ runId: 'secret-run', destinations: [{ name: 'a-only.test' }] });
    await store.ingest(a.id, { runId: 'secret-run', report: withoutEvents(report), events: report.events }, NOW);
    await store.putPolicy(a.id, 'a-policy', { egressPolicy: 'block', allowedEndpoints: [], disableFileMonitoring: false, disableSudo: false, disableSudoAndContainers: false, disableTelemetry: false }, 't', NOW);
    await store.attachPolicy(a.id, { level: 'org', org: 'acme', repo: null, workflow: null, job: null }, 'a-policy', NOW);
    expect(await store.getRun(b.id, 'secret-run')).toBeNull();
    expect(await store.listEvents(b.id, 'secret-run', { afterSeq: 0, limit: 10 })).toBeNull();
    expect(await store.timeline(b.id, 'secret-run', 10)).toBeNull();
    expect(await store.jobRuns(b.id, 'secret-run', 10)).toBeNull();
    expect((await store.listRuns(b.id, { limit: 100 })).runs).toEqual([]);
    expect(await store.getPolicy(b.id, 'a-policy')).toBeNull();
    expect(await store.listPolicies(b.id)).toEqual([]);
    expect(await store.resolvePolicy(b.id, { org: 'acme' })).toBeNull();
    await expect(store.attachPolicy(b.id, { level: 'org', org: 'acme', repo: null, workflow: null, job: null }, 'a-policy', NOW)).rejects.toMatchObject({ code: 'RW_NOT_FOUND' });
    // The same run id in tenant B is a different run.
    await store.ingest(b.id, { runId: 'secret-run', events: [] }, NOW);
    expect((await store.getRun(a.id, 'secret-run'))?.counts.events).toBe(2);
    expect((await store.getRun(b.id, 'secret-run'))?.counts.events).toBe(0);
  });
});
