// Tenant B cannot see or change tenant A's runs, events, policies, keys or users through any endpoint.
// The table below must name every route the app registers, so a new endpoint cannot skip this test.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlStore } from '../../src/server/index.js';
import { testApp, type TestApp } from './helpers/app.js';
import { makeReport } from './helpers/reports.js';
import { freshStore } from './helpers/stores.js';

let store: SqlStore;
let cleanup: () => Promise<void>;
let t: TestApp;
let a: { admin: string; agent: string; member: string };
let b: { admin: string; agent: string; member: string };
let aKeyId: string;

const SECRET = 'secret-a.test';

beforeAll(async () => {
  ({ store, cleanup } = await freshStore('sqlite', null));
  t = await testApp(store);
  a = await t.tenant('tenant-a');
  b = await t.tenant('tenant-b');
  for (const runId of ['a-run-1', 'a-run-2']) {
    const report = makeReport({ runId, repo: 'acme/app', destinations: [{ name: SECRET, exe: '/usr/bin/curl' }] });
    expect((await t.call('POST', '/api/v1/runs', { key: a.agent, body: report })).statusCode).toBe(201);
  }
  expect((await t.call('PUT', '/api/v1/policies/a-policy', { key: a.admin, body: { 'egress-policy': 'block', 'allowed-endpoints': `${SECRET}:443` } })).statusCode).toBe(201);
  expect((await t.call('PUT', '/api/v1/policy-attachments', { key: a.admin, body: { policy: 'a-policy', org: 'acme' } })).statusCode).toBe(200);
  expect((await t.call('POST', '/api/v1/users', { key: a.admin, body: { email: 'alice@a.test', password: 'a long enough password', role: 'member' } })).statusCode).toBe(201);
  aKeyId = ((await t.call('GET', '/api/v1/keys', { key: a.admin })).json() as { keys: { keyId: string }[] }).keys[0]!.keyId;
});
afterAll(async () => {
  await t.app.close();
  await cleanup();
});

/** Whether the response shows any of A's data; names the caller itself sent (echoed in a 404 message) do not count. */
function leaks(response: LightMyRequestResponse, sent: readonly string[] = []): boolean {
  let body = response.body;
  for (const text of sent) body = body.split(text).join('');
  return [SECRET, 'a-run-', 'a-policy', 'alice@a.test', aKeyId].some((marker) => body.includes(marker));
}

function sentBy(url: string, body: unknown): string[] {
  const out = url.split(/[/?&=]/).filter((part) => part.length > 2);
  if (body !== undefined) out.push(...Object.values(body as Record<string, unknown>).map(String));
  return out;
}

type Probe = () => Promise<void>;

const expect404 = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, key = () => b.admin): Probe => async () => {
  const response = await t.call(method, url, { key: key(), ...(body === undefined ? {} : { body }) });
  expect(response.statusCode, `${method} ${url}`).toBe(404);
  expect(response.json().error.code).toBe('RW_NOT_FOUND');
  expect(leaks(response, sentBy(url, body)), `${method} ${url} leaks: ${response.body}`).toBe(false);
};

const expectNoLeak = (method: 'GET' | 'POST', url: string, key = () => b.admin, body?: unknown): Probe => async () => {
  const response = await t.call(method, url, { key: key(), ...(body === undefined ? {} : { body }) });
  expect(response.statusCode, `${method} ${url}`).toBeLessThan(300);
  expect(leaks(response), `${method} ${url} leaks: ${response.body.slice(0, 300)}`).toBe(false);
};

/** Service-wide operator routes: a tenant admin is refused outright. */
const expectOperatorOnly = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Probe => async () => {
  const response = await t.call(method, url, { key: b.admin, ...(body === undefined ? {} : { body }) });
  expect(response.statusCode, `${method} ${url}`).toBe(403);
};

const PROBES: Record<string, Probe> = {
  'GET /api/v1/runs': expectNoLeak('GET', '/api/v1/runs?limit=200'),
  'GET /api/v1/runs/:runId': expect404('GET', '/api/v1/runs/a-run-1'),
  'GET /api/v1/runs/:runId/events': expect404('GET', '/api/v1/runs/a-run-1/events'),
  'GET /api/v1/runs/:runId/timeline': expect404('GET', '/api/v1/runs/a-run-1/timeline'),
  'GET /api/v1/runs/:runId/network': expect404('GET', '/api/v1/runs/a-run-1/network'),
  'GET /api/v1/runs/:runId/processes': expect404('GET', '/api/v1/runs/a-run-1/processes'),
  'GET /api/v1/runs/:runId/recommendation': expect404('GET', '/api/v1/runs/a-run-1/recommendation'),
  'POST /api/v1/runs/:runId/replay': expect404('POST', '/api/v1/runs/a-run-1/replay', {}),
  // Uploading under A's run id makes a run of B's own; A's run is untouched.
  'POST /api/v1/runs': async () => {
    const report = makeReport({ runId: 'a-run-1', repo: 'globex/app', destinations: [{ name: 'b.test' }] });
    const response = await t.call('POST', '/api/v1/runs', { key: b.agent, body: report });
    expect(response.json()).toMatchObject({ created: true, added: 2 });
    const aRun = (await t.call('GET', '/api/v1/runs/a-run-1', { key: a.member })).json().run;
    expect(aRun).toMatchObject({ repo: 'acme/app', counts: { events: 2 } });
  },
  'POST /api/v1/runs/:runId/events': async () => {
    const response = await t.call('POST', '/api/v1/runs/a-run-2/events', { key: b.agent, body: { events: [] } });
    expect(response.json()).toMatchObject({ created: true, added: 0 });
    expect((await t.call('GET', '/api/v1/runs/a-run-2', { key: a.member })).json().run.counts.events).toBe(2);
  },
  'GET /api/v1/policies': expectNoLeak('GET', '/api/v1/policies', () => b.member),
  'GET /api/v1/policies/:name': expect404('GET', '/api/v1/policies/a-policy'),
  'PUT /api/v1/policies/:name': async () => {
    const response = await t.call('PUT', '/api/v1/policies/a-policy', { key: b.admin, body: { 'egress-policy': 'audit' } });
    expect(response.statusCode).toBe(201);
    expect(response.json().version).toBe(1);
    expect((await t.call('GET', '/api/v1/policies/a-policy', { key: a.member })).json().fields.egressPolicy).toBe('block');
    expect((await t.call('DELETE', '/api/v1/policies/a-policy', { key: b.admin })).statusCode).toBe(204);
  },
  'DELETE /api/v1/policies/:name': expect404('DELETE', '/api/v1/policies/a-policy'),
  'GET /api/v1/policy-attachments': expectNoLeak('GET', '/api/v1/policy-attachments', () => b.member),
  'PUT /api/v1/policy-attachments': expect404('PUT', '/api/v1/policy-attachments', { policy: 'a-policy', org: 'acme' }),
  'DELETE /api/v1/policy-attachments': expect404('DELETE', '/api/v1/policy-attachments', { org: 'acme' }),
  'GET /api/v1/policy/resolve': expect404('GET', '/api/v1/policy/resolve?org=acme&repo=acme/app', undefined, () => b.agent),
  'GET /api/v1/blocklist': expectNoLeak('GET', '/api/v1/blocklist', () => b.agent),
  'POST /api/v1/blocklist': expectOperatorOnly('POST', '/api/v1/blocklist', { entry: 'x.test', reason: 'r' }),
  'DELETE /api/v1/blocklist/:id': expectOperatorOnly('DELETE', '/api/v1/blocklist/1'),
  'GET /api/v1/fleet-alerts': expectOperatorOnly('GET', '/api/v1/fleet-alerts'),
  'GET /api/v1/tenants': expectOperatorOnly('GET', '/api/v1/tenants'),
  'POST /api/v1/tenants': expectOperatorOnly('POST', '/api/v1/tenants', { slug: 'x', name: 'x' }),
  'GET /api/v1/me': expectNoLeak('GET', '/api/v1/me'),
  'GET /api/v1/keys': expectNoLeak('GET', '/api/v1/keys'),
  'POST /api/v1/keys': expectNoLeak('POST', '/api/v1/keys', () => b.admin, { role: 'member', label: 'b2' }),
  'DELETE /api/v1/keys/:keyId': async () => {
    await expect404('DELETE', `/api/v1/keys/${aKeyId}`)();
    expect((await t.call('GET', '/api/v1/me', { key: a.admin })).statusCode).toBe(200);
  },
  'GET /api/v1/users': expectNoLeak('GET', '/api/v1/users'),
  'POST /api/v1/users': expectNoLeak('POST', '/api/v1/users', () => b.admin, { email: 'bob@b.test', password: 'another long password', role: 'member' }),
  // Session routes answer for the caller's own credentials only; health is public and says nothing about tenants.
  'DELETE /api/v1/session': async () => {
    expect((await t.call('DELETE', '/api/v1/session', { key: null })).statusCode).toBe(204);
  },
  'GET /api/v1/health': async () => {
    expect(leaks(await t.call('GET', '/api/v1/health', { key: null }))).toBe(false);
  },
};

PROBES['POST /api/v1/session'] = async () => {
  const response = await t.call('POST', '/api/v1/session', { key: null, body: { apiKey: b.admin } });
  expect(response.statusCode).toBe(200);
  const cookie = String(response.headers['set-cookie']).split(';')[0] ?? '';
  // B may by now have runs of its own under the same ids; none of them is A's.
  const runs = await t.call('GET', '/api/v1/runs', { key: null, cookie });
  expect(runs.body).not.toContain(SECRET);
  expect((runs.json() as { runs: { repo: string }[] }).runs.map((r) => r.repo)).not.toContain('acme/app');
  expect((await t.call('GET', '/api/v1/runs/a-run-2/events', { key: null, cookie })).body).not.toContain(SECRET);
};

describe('tenant isolation', () => {
  it('has a probe for every API route the app registers', () => {
    const api = t.routes.filter((r) => r.url.startsWith('/api/')).map((r) => `${r.method} ${r.url}`);
    expect([...api].sort()).toEqual(Object.keys(PROBES).sort());
    // Every API route states who may call it.
    expect(t.routes.filter((r) => r.url.startsWith('/api/') && r.access === null)).toEqual([]);
  });

  for (const [route, probe] of Object.entries(PROBES)) {
    it(`${route}: tenant B sees nothing of tenant A`, probe);
  }
});
