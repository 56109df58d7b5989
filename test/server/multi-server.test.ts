// Two server processes' worth of state (two apps, two connection pools) on one PostgreSQL behave as one service:
// sessions, rate limits, block-list versions and check-run claims live in the database, not in a process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, openStore, type RunwallApp, type SqlStore } from '../../src/server/index.js';
import { startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';
import { makeReport } from './helpers/reports.js';
import { testApp, type TestApp } from './helpers/app.js';

let pg: TestPostgres;
let github: FakeGitHub;
let storeA: SqlStore;
let storeB: SqlStore;
let a: TestApp;
let b: RunwallApp;
let keys: { admin: string; agent: string; member: string };

const REQUESTS_PER_MINUTE = 40;

beforeAll(async () => {
  pg = await startPostgres();
  github = await startFakeGitHub();
  const url = await pg.createDatabase(`multi_${process.pid}`);
  const github_ = { appId: github.appId, privateKey: github.privateKey, baseUrl: github.url, checkName: 'runwall', publicUrl: null };
  const options = { requestsPerMinute: REQUESTS_PER_MINUTE };
  // One fixed clock for both, so the rate-limit window cannot roll over in the middle of a test.
  const now = () => Date.parse('2026-11-26T12:00:30.000Z');
  // Both open (and migrate) the same database at once, as two servers starting together would.
  [{ store: storeA }, { store: storeB }] = await Promise.all([openStore({ kind: 'postgres', url }), openStore({ kind: 'postgres', url })]);
  a = await testApp(storeA, { github: github_, options, now });
  b = await buildApp({ store: storeB, github: github_, options, now });
  keys = await a.tenant('acme');
});
afterAll(async () => {
  await a?.app.close();
  await b?.app.close();
  await storeA?.close();
  await storeB?.close();
  await github?.close();
  await pg?.stop();
});

function callB(method: 'GET' | 'POST' | 'DELETE', url: string, options: { key?: string; cookie?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.cookie) headers.cookie = options.cookie;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return b.app.inject({ method, url, headers, ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }) });
}

describe('two servers on one PostgreSQL', () => {
  it('accepts a session opened on one server at the other, and ends it on both', async () => {
    const login = await a.call('POST', '/api/v1/session', { key: null, body: { apiKey: keys.member } });
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    expect((await callB('GET', '/api/v1/me', { cookie })).json()).toMatchObject({ tenant: 'acme', role: 'member', via: 'session' });
    expect((await callB('DELETE', '/api/v1/session', { cookie })).statusCode).toBe(204);
    expect((await a.call('GET', '/api/v1/me', { key: null, cookie })).statusCode).toBe(401);
  });

  it('counts one rate limit across both servers', async () => {
    const { key } = (await a.call('POST', '/api/v1/keys', { key: keys.admin, body: { role: 'member', label: 'limited' } })).json() as { key: string };
    const statuses: number[] = [];
    for (let i = 0; i < REQUESTS_PER_MINUTE + 2; i++) {
      const response = i % 2 === 0 ? await a.call('GET', '/api/v1/me', { key }) : await callB('GET', '/api/v1/me', { key });
      statuses.push(response.statusCode);
    }
    // tenant() and the key creation above used the admin key, not this one: this key starts at zero.
    expect(statuses).toEqual([...Array<number>(REQUESTS_PER_MINUTE).fill(200), 429, 429]);
  });

  it('gives the same block-list ETag on both, and a change on one is seen at the other', async () => {
    const fromA = await a.call('GET', '/api/v1/blocklist', { key: keys.agent });
    const fromB = await callB('GET', '/api/v1/blocklist', { key: keys.agent });
    expect(fromB.headers.etag).toBe(fromA.headers.etag);
    expect((await callB('GET', '/api/v1/blocklist', { key: keys.agent, headers: { 'if-none-match': String(fromA.headers.etag) } })).statusCode).toBe(304);
    expect((await a.call('POST', '/api/v1/blocklist', { body: { entry: '203.0.113.0/24', reason: 'known C2 range' } })).statusCode).toBe(201);
    const changed = await callB('GET', '/api/v1/blocklist', { key: keys.agent, headers: { 'if-none-match': String(fromA.headers.etag) } });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().entries.map((e: { text: string }) => e.text)).toEqual(['203.0.113.0/24']);
  });

  it('posts one check run when the same report reaches both servers at once', async () => {
    const report = makeReport({ runId: 'both-1', sha: 'c'.repeat(40), destinations: [{ name: 'registry.test' }] });
    const [first, second] = await Promise.all([
      a.call('POST', '/api/v1/runs', { key: keys.agent, body: report }),
      callB('POST', '/api/v1/runs', { key: keys.agent, body: report }),
    ]);
    expect([first.statusCode, second.statusCode].sort()).toEqual([200, 201]);
    expect(first.json().added + second.json().added).toBe(2);
    await Promise.all([a.drain(), b.drain()]);
    expect(github.checkRuns.filter((c) => c.external_id === 'both-1')).toHaveLength(1);
  });

  it('ingests event batches of one run through both servers without losing or doubling any', async () => {
    const report = makeReport({ runId: 'split', destinations: Array.from({ length: 20 }, (_, i) => ({ name: `h${i}.test` })) });
    const batches = Array.from({ length: 8 }, (_, i) => report.events.slice(i * 5, i * 5 + 5));
    const results = await Promise.all(
      batches.map((events, i) => (i % 2 === 0 ? a.call('POST', '/api/v1/runs/split/events', { key: keys.agent, body: { events } }) : callB('POST', '/api/v1/runs/split/events', { key: keys.agent, body: { events } }))),
    );
    expect(results.every((r) => r.statusCode === 200 || r.statusCode === 201)).toBe(true);
    const run = (await callB('GET', '/api/v1/runs/split', { key: keys.member })).json().run;
    expect(run.counts.events).toBe(40);
  });
});
