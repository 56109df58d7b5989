// API v1 on SQLite through fastify's inject: what an agent, the Action and a person get back, including every refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlStore } from '../../src/server/index.js';
import { testApp, type TestApp } from './helpers/app.js';
import { destinationEvents, makeReport } from './helpers/reports.js';
import { freshStore } from './helpers/stores.js';

let store: SqlStore;
let cleanup: () => Promise<void>;
let t: TestApp;
let acme: { admin: string; agent: string; member: string };

beforeAll(async () => {
  ({ store, cleanup } = await freshStore('sqlite', null));
  t = await testApp(store, { options: { bodyLimit: 64 * 1024, authFailuresPerMinute: 1000 } });
  acme = await t.tenant('acme');
});
afterAll(async () => {
  await t.app.close();
  await cleanup();
});

const runCount = async (key: string) => ((await t.call('GET', '/api/v1/runs?limit=200', { key })).json() as { runs: unknown[] }).runs.length;

describe('authentication and roles', () => {
  it('answers 401 with a coded body without a key, with a malformed key and with a wrong one', async () => {
    for (const key of [null, 'nonsense', 'rwk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
      const response = await t.call('GET', '/api/v1/runs', { key });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'RW_AUTH_REQUIRED' } });
    }
  });

  it('refuses what a role may not do with 403, and serves health without a key', async () => {
    const read = await t.call('GET', '/api/v1/runs', { key: acme.agent });
    expect(read.statusCode).toBe(403);
    expect(read.json().error).toMatchObject({ code: 'RW_FORBIDDEN', message: expect.stringContaining('agent key may not read runs') });
    expect((await t.call('POST', '/api/v1/blocklist', { key: acme.admin, body: { entry: 'x.test', reason: 'r' } })).statusCode).toBe(403);
    expect((await t.call('POST', '/api/v1/keys', { key: acme.admin, body: { role: 'operator', label: 'up' } })).statusCode).toBe(403);
    expect((await t.call('GET', '/api/v1/health', { key: null })).json()).toMatchObject({ ok: true, database: 'sqlite' });
  });

  it('refuses an unauthenticated upload before reading it, even an oversized one', async () => {
    const response = await t.call('POST', '/api/v1/runs', { key: null, raw: 'x'.repeat(200 * 1024) });
    expect(response.statusCode).toBe(401);
  });

  it('signs a person in with a session cookie kept in the database, and out again', async () => {
    const login = await t.call('POST', '/api/v1/session', { key: null, body: { email: 'admin@runwall.local', password: t.operatorPassword } });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await t.call('GET', '/api/v1/me', { key: null, cookie })).json()).toMatchObject({ tenant: 'default', role: 'operator', via: 'session' });
    const wrong = await t.call('POST', '/api/v1/session', { key: null, body: { email: 'admin@runwall.local', password: 'nope' } });
    expect(wrong.statusCode).toBe(401);
    expect((await t.call('POST', '/api/v1/session', { key: null, body: { apiKey: acme.agent } })).statusCode).toBe(403);
    expect((await t.call('DELETE', '/api/v1/session', { key: null, cookie })).statusCode).toBe(204);
    expect((await t.call('GET', '/api/v1/me', { key: null, cookie })).statusCode).toBe(401);
  });
});

describe('ingest', () => {
  it('stores a report once: 201, then 200 with every event a duplicate', async () => {
    const report = makeReport({ runId: 'ing-1', destinations: [{ name: 'registry.test' }, { name: 'evil.test', verdict: 'attack-blocked' }] });
    const first = await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ runId: 'ing-1', created: true, added: 4, duplicates: 0, verdict: 'attack-blocked' });
    const retry = await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toMatchObject({ created: false, added: 0, duplicates: 4 });
    const detail = (await t.call('GET', '/api/v1/runs/ing-1', { key: acme.member })).json();
    expect(detail.run).toMatchObject({ runId: 'ing-1', verdict: 'attack-blocked', counts: { events: 4, attackBlocked: 2 } });
  });

  it('answers malformed JSON with 400 naming the problem, and changes nothing', async () => {
    const before = await runCount(acme.member);
    const response = await t.call('POST', '/api/v1/runs', { key: acme.agent, raw: '{"schemaVersion": 1, "run": ' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'RW_PAYLOAD_INVALID', message: expect.stringMatching(/not valid JSON: .*JSON/) });
    expect(await runCount(acme.member)).toBe(before);
  });

  it('answers a report of the wrong shape with 400 listing the schema problems, and changes nothing', async () => {
    const before = await runCount(acme.member);
    const report = makeReport({ runId: 'bad-shape', destinations: [{ name: 'a.test' }] }) as unknown as Record<string, unknown>;
    const events = report.events as Record<string, unknown>[];
    events[1] = { ...events[1], verdict: 'maybe' };
    const response = await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report });
    expect(response.statusCode).toBe(400);
    const error = response.json().error;
    expect(error.code).toBe('RW_PAYLOAD_INVALID');
    expect(error.details.problems.map((p: { path: string }) => p.path)).toContain('/events/1');
    expect(await runCount(acme.member)).toBe(before);
  });

  it('answers an oversized upload with a precise 413, and changes nothing', async () => {
    const before = await runCount(acme.member);
    const big = makeReport({ runId: 'too-big', destinations: Array.from({ length: 300 }, (_, i) => ({ name: `h${i}.test` })) });
    const body = JSON.stringify(big);
    const response = await t.call('POST', '/api/v1/runs', { key: acme.agent, raw: body });
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({
      code: 'RW_PAYLOAD_TOO_LARGE',
      message: expect.stringContaining(`the upload is ${Buffer.byteLength(body)} bytes; this server accepts at most ${64 * 1024} bytes`),
      details: { limit: 64 * 1024, size: Buffer.byteLength(body) },
    });
    expect(await runCount(acme.member)).toBe(before);
  });

  it('answers a body that is not JSON with 415', async () => {
    const response = await t.call('POST', '/api/v1/runs', { key: acme.agent, raw: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(response.statusCode).toBe(415);
    expect(response.json().error.code).toBe('RW_PAYLOAD_INVALID');
  });

  it('takes event batches in any order and late, and the report after them', async () => {
    const report = makeReport({ runId: 'batches', destinations: [{ name: 'a.test' }, { name: 'b.test' }, { name: 'c.test', verdict: 'blocked' }] });
    const [e1, e2, e3, e4, e5, e6] = report.events;
    const post = (events: unknown[], run?: unknown) => t.call('POST', '/api/v1/runs/batches/events', { key: acme.agent, body: { events, ...(run ? { run } : {}) } });
    expect((await post([e5, e6])).statusCode).toBe(201);
    expect((await post([e1, e2], report.run)).json()).toMatchObject({ created: false, added: 2 });
    const listed = (await t.call('GET', '/api/v1/runs?repo=acme/app', { key: acme.member })).json().runs.find((r: { runId: string }) => r.runId === 'batches');
    expect(listed).toMatchObject({ complete: false, verdict: 'blocked', counts: { events: 4 } });
    expect((await post([e2, e3, e4])).json()).toMatchObject({ added: 2, duplicates: 1 });
    expect((await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report })).json()).toMatchObject({ added: 0, duplicates: 6 });
    const run = (await t.call('GET', '/api/v1/runs/batches', { key: acme.member })).json().run;
    expect(run).toMatchObject({ complete: true, counts: { events: 6, blocked: 2, allowed: 4 } });
    const mismatch = await t.call('POST', '/api/v1/runs/batches/events', { key: acme.agent, body: { events: [], run: { ...report.run, runId: 'other' } } });
    expect(mismatch.statusCode).toBe(400);
    const unknownKey = await t.call('POST', '/api/v1/runs/batches/events', { key: acme.agent, body: { events: [], extra: 1 } });
    expect(unknownKey.statusCode).toBe(400);
  });
});

describe('reading runs', () => {
  beforeAll(async () => {
    for (let i = 0; i < 12; i++) {
      const report = makeReport({
        runId: `list-${i}`,
        repo: 'acme/list',
        workflow: i % 2 ? 'ci.yml' : 'nightly.yml',
        startedAt: new Date(Date.parse('2026-10-01T00:00:00Z') + i * 3600_000).toISOString(),
        destinations: [{ name: 'registry.test', verdict: i % 3 === 0 ? 'audit' : 'allowed' }],
      });
      await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report });
    }
  });

  it('lists newest first with filters and follows next cursors to the end', async () => {
    const ids: string[] = [];
    let url = '/api/v1/runs?repo=acme/list&limit=5';
    for (let page = 0; page < 5; page++) {
      const body = (await t.call('GET', url, { key: acme.member })).json() as { runs: { runId: string }[]; next: string | null };
      ids.push(...body.runs.map((r) => r.runId));
      if (!body.next) break;
      url = `/api/v1/runs?repo=acme/list&limit=5&cursor=${body.next}`;
    }
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => `list-${11 - i}`));
    const audit = (await t.call('GET', '/api/v1/runs?repo=acme/list&verdict=audit&workflow=nightly.yml', { key: acme.member })).json();
    expect(audit.runs.map((r: { runId: string }) => r.runId)).toEqual(['list-6', 'list-0']);
    const window = (await t.call('GET', '/api/v1/runs?repo=acme/list&from=2026-10-01T02:00:00Z&to=2026-10-01T04:00:00Z', { key: acme.member })).json();
    expect(window.runs.map((r: { runId: string }) => r.runId)).toEqual(['list-3', 'list-2']);
  });

  it('answers an unknown filter value, parameter or cursor with 400 RW_QUERY_INVALID naming it', async () => {
    const cases: [string, string][] = [
      ['/api/v1/runs?verdict=suspicious', "verdict must be one of allowed, audit, blocked, attack-blocked, not 'suspicious'"],
      ['/api/v1/runs?colour=red', "unknown query parameter 'colour'"],
      ['/api/v1/runs?limit=0', 'limit must be a whole number from 1 to 200'],
      ['/api/v1/runs?from=yesterday', 'from must be an ISO 8601 date'],
      ['/api/v1/runs?cursor=abc', 'cursor is not one this server returned'],
      ['/api/v1/runs/list-1/events?kind=dns,smoke', "kind must be a comma-separated list"],
    ];
    for (const [url, message] of cases) {
      const response = await t.call('GET', url, { key: acme.member });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().error, url).toMatchObject({ code: 'RW_QUERY_INVALID', message: expect.stringContaining(message) });
    }
  });

  it('serves one run, its events by page, its timeline, network tree and process tree', async () => {
    const events = [
      { kind: 'step', seq: 1, time: '2026-11-26T12:00:00.000Z', action: 'begin', id: 's1', name: 'Install' },
      ...destinationEvents([{ name: 'registry.test', exe: '/usr/bin/npm', step: 's1' }, { name: 'evil.test', verdict: 'attack-blocked', exe: '/usr/bin/curl', step: 's1' }], 2),
      { kind: 'process', seq: 6, time: '2026-11-26T12:00:03.000Z', action: 'exec', pid: 1000, ppid: 10, exe: '/usr/bin/npm', argv: ['npm', 'ci'] },
      { kind: 'file', seq: 7, time: '2026-11-26T12:00:04.000Z', action: 'write', path: '/work/src/index.js', source: true },
    ];
    await t.call('POST', '/api/v1/runs/views/events', { key: acme.agent, body: { events } });
    const page1 = (await t.call('GET', '/api/v1/runs/views/events?limit=4', { key: acme.member })).json();
    expect(page1.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4]);
    const page2 = (await t.call('GET', `/api/v1/runs/views/events?limit=4&after=${page1.nextAfter}`, { key: acme.member })).json();
    expect(page2.events.map((e: { seq: number }) => e.seq)).toEqual([5, 6, 7]);
    const files = (await t.call('GET', '/api/v1/runs/views/events?kind=file', { key: acme.member })).json();
    expect(files.events).toEqual([expect.objectContaining({ path: '/work/src/index.js' })]);
    const timeline = (await t.call('GET', '/api/v1/runs/views/timeline?buckets=4', { key: acme.member })).json();
    expect(timeline.buckets).toHaveLength(4);
    expect(timeline.buckets.reduce((n: number, b: { attackBlocked: number }) => n + b.attackBlocked, 0)).toBe(2);
    const network = (await t.call('GET', '/api/v1/runs/views/network', { key: acme.member })).json();
    expect(network.steps[0]).toMatchObject({ id: 's1', name: 'Install' });
    const curl = network.steps[0].processes.find((p: { chain: string[] }) => p.chain.at(-1) === '/usr/bin/curl');
    expect(curl).toMatchObject({ chain: ['/usr/bin/bash', '/usr/bin/curl'], destinations: [{ destination: 'evil.test', verdict: 'attack-blocked' }, { destination: 'evil.test:443', verdict: 'attack-blocked' }] });
    const processes = (await t.call('GET', '/api/v1/runs/views/processes', { key: acme.member })).json();
    expect(processes.roots[0]).toMatchObject({ pid: 10, exe: '/usr/bin/bash' });
    expect(processes.roots[0].children.map((c: { exe: string }) => c.exe).sort()).toEqual(['/usr/bin/curl', '/usr/bin/npm']);
    expect((await t.call('GET', '/api/v1/runs/nope', { key: acme.member })).statusCode).toBe(404);
  });
});

describe('policy store', () => {
  it('stores named policies with the Action fields and resolves the most specific attachment', async () => {
    const put = (name: string, body: unknown, key = acme.admin, headers: Record<string, string> = {}) => t.call('PUT', `/api/v1/policies/${name}`, { key, body, headers });
    expect((await put('baseline', { 'egress-policy': 'audit' })).statusCode).toBe(201);
    const strict = await put('app-build', { 'egress-policy': 'block', 'allowed-endpoints': 'registry.test:443 *.github.test', 'disable-sudo': true });
    expect(strict.statusCode).toBe(201);
    expect(strict.json()).toMatchObject({ version: 1, fields: { allowedEndpoints: ['registry.test:443', '*.github.test:443'], disableSudo: true } });
    const attach = (body: unknown) => t.call('PUT', '/api/v1/policy-attachments', { key: acme.admin, body });
    expect((await attach({ policy: 'baseline', org: 'acme' })).statusCode).toBe(200);
    expect((await attach({ policy: 'app-build', org: 'acme', repo: 'acme/app', workflow: 'ci.yml', job: 'build' })).json()).toMatchObject({ scope: { level: 'job' } });
    const resolve = (qs: string) => t.call('GET', `/api/v1/policy/resolve?${qs}`, { key: acme.agent });
    const job = (await resolve('org=acme&repo=acme/app&workflow=ci.yml&job=build')).json();
    expect(job.policy).toMatchObject({ name: 'app-build', inputs: { 'egress-policy': 'block', 'allowed-endpoints': 'registry.test:443\n*.github.test:443', 'disable-sudo': 'true' } });
    expect((await resolve('org=acme&repo=acme/app&workflow=ci.yml&job=test')).json().policy.name).toBe('baseline');
    const none = await resolve('org=globex');
    expect(none.statusCode).toBe(404);
    expect(none.json().error.code).toBe('RW_NOT_FOUND');
  });

  it('refuses bad policies precisely, and a stale If-Match with 409', async () => {
    const put = (body: unknown, headers: Record<string, string> = {}) => t.call('PUT', '/api/v1/policies/p2', { key: acme.admin, body, headers });
    const badEndpoint = await put({ 'egress-policy': 'block', 'allowed-endpoints': ['github.test:99999'] });
    expect(badEndpoint.statusCode).toBe(400);
    expect(badEndpoint.json().error).toMatchObject({ code: 'RW_ENDPOINT_INVALID', message: expect.stringContaining('github.test:99999') });
    expect((await put({ 'egress-policy': 'block', colour: 'red' })).json().error).toMatchObject({ code: 'RW_POLICY_INVALID', message: expect.stringContaining("unknown key 'colour'") });
    expect((await put({ 'egress-policy': 'sometimes' })).json().error.code).toBe('RW_MODE_INVALID');
    expect((await put({ 'allowed-endpoints': [] })).json().error.message).toContain("'egress-policy' is required");
    expect((await put({ 'egress-policy': 'audit' })).statusCode).toBe(201);
    const stale = await put({ 'egress-policy': 'block' }, { 'if-match': '"7"' });
    expect(stale.statusCode).toBe(409);
    expect((await put({ 'egress-policy': 'block' }, { 'if-match': '"1"' })).json().version).toBe(2);
    expect((await t.call('PUT', '/api/v1/policies/p3', { key: acme.member, body: { 'egress-policy': 'audit' } })).statusCode).toBe(403);
    const badScope = await t.call('PUT', '/api/v1/policy-attachments', { key: acme.admin, body: { policy: 'p2', org: 'acme', repo: 'globex/app' } });
    expect(badScope.json().error).toMatchObject({ code: 'RW_PAYLOAD_INVALID', message: "repo 'globex/app' does not belong to org 'acme'" });
  });
});

describe('global block list', () => {
  it('gives agents an ETag: 304 while unchanged, the new entry as soon as an operator adds it', async () => {
    const first = await t.call('GET', '/api/v1/blocklist', { key: acme.agent });
    expect(first.statusCode).toBe(200);
    const etag = String(first.headers.etag);
    const unchanged = await t.call('GET', '/api/v1/blocklist', { key: acme.agent, headers: { 'if-none-match': etag } });
    expect(unchanged.statusCode).toBe(304);
    expect(unchanged.body).toBe('');
    const added = await t.call('POST', '/api/v1/blocklist', { body: { entry: '*.ipify.test', reason: 'IP discovery used by exfiltration', source: 'incident 7' } });
    expect(added.statusCode).toBe(201);
    const changed = await t.call('GET', '/api/v1/blocklist', { key: acme.agent, headers: { 'if-none-match': etag } });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    expect(changed.json().entries).toEqual([expect.objectContaining({ kind: 'wildcard', value: 'ipify.test', text: '*.ipify.test', reason: 'IP discovery used by exfiltration', source: 'incident 7' })]);
    const id = added.json().entry.id;
    expect((await t.call('DELETE', `/api/v1/blocklist/${id}`)).statusCode).toBe(200);
    const after = await t.call('GET', '/api/v1/blocklist', { key: acme.agent, headers: { 'if-none-match': String(changed.headers.etag) } });
    expect(after.statusCode).toBe(200);
    expect(after.json().entries).toEqual([]);
    expect((await t.call('DELETE', `/api/v1/blocklist/${id}`)).statusCode).toBe(404);
  });

  it('refuses an entry the block-list rules reject', async () => {
    const response = await t.call('POST', '/api/v1/blocklist', { body: { entry: 'evil.test:443', reason: 'x' } });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'RW_BLOCKLIST_INVALID', message: expect.stringContaining('has a port') });
  });
});

describe('recommendation and replay', () => {
  it('aggregates the job\'s runs, diffs against the policy in force and replays a candidate', async () => {
    const runs = [
      ['job-1', ['registry.test', 'github.test']],
      ['job-2', ['registry.test', 'cdn.test']],
      ['job-3', ['registry.test', 'github.test']],
    ] as const;
    for (const [i, [runId, names]] of runs.entries()) {
      const report = makeReport({ runId, repo: 'initech/rec', mode: 'audit', startedAt: `2026-11-0${i + 1}T00:00:00.000Z`, destinations: names.map((name) => ({ name })) });
      await t.call('POST', '/api/v1/runs', { key: acme.agent, body: report });
    }
    const rec = (await t.call('GET', '/api/v1/runs/job-3/recommendation?runs=3', { key: acme.member })).json();
    expect(rec.basedOn.map((r: { runId: string }) => r.runId)).toEqual(['job-3', 'job-2', 'job-1']);
    expect(rec.recommended.allowedEndpoints).toEqual(['cdn.test:443', 'github.test:443', 'registry.test:443']);
    expect(rec.inForce).toMatchObject({ source: 'run', allowedEndpoints: ['registry.test:443'] });
    expect(rec.diff).toEqual({ added: ['cdn.test:443', 'github.test:443'], unused: [], kept: ['registry.test:443'] });
    const replay = (await t.call('POST', '/api/v1/runs/job-3/replay', { key: acme.member, body: { allowedEndpoints: ['registry.test:443', 'github.test:443'], runs: 3 } })).json();
    expect(replay.runs.map((r: { runId: string; wouldBlock: { destination: string }[] }) => [r.runId, r.wouldBlock.map((w) => w.destination)])).toEqual([
      ['job-3', []],
      ['job-2', ['cdn.test', 'cdn.test:443']],
      ['job-1', []],
    ]);
    const byDefault = (await t.call('POST', '/api/v1/runs/job-3/replay', { key: acme.member, body: {} })).json();
    expect(byDefault.runs.every((r: { wouldBlock: unknown[] }) => r.wouldBlock.length === 0)).toBe(true);
    // Under acme's org-wide policy (attached above), that policy is the one in force.
    await t.call('POST', '/api/v1/runs', { key: acme.agent, body: makeReport({ runId: 'acme-rec', repo: 'acme/rec', destinations: [{ name: 'registry.test' }] }) });
    const underStore = (await t.call('GET', '/api/v1/runs/acme-rec/recommendation', { key: acme.member })).json();
    expect(underStore.inForce).toMatchObject({ source: 'policy-store', policy: 'baseline', mode: 'audit', allowedEndpoints: [] });
    expect(underStore.diff.added).toEqual(['registry.test:443']);
    const bad = await t.call('POST', '/api/v1/runs/job-3/replay', { key: acme.member, body: { allowedEndpoints: ['github.test:99999'] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('RW_ENDPOINT_INVALID');
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After once a key passes its budget', async () => {
    const { store: limitedStore, cleanup: done } = await freshStore('sqlite', null);
    const limited = await testApp(limitedStore, { options: { requestsPerMinute: 3 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await limited.call('GET', '/api/v1/me')).statusCode);
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      const last = await limited.call('GET', '/api/v1/me');
      expect(last.statusCode).toBe(429);
      expect(last.json().error.code).toBe('RW_RATE_LIMITED');
      expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await limited.app.close();
      await done();
    }
  });
});
