// GitHub Checks through the real Octokit client, pointed at a local fake of the Checks API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutput, type SqlStore } from '../../src/server/index.js';
import { testApp, type TestApp } from './helpers/app.js';
import { startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';
import { makeReport } from './helpers/reports.js';
import { freshStore } from './helpers/stores.js';

let github: FakeGitHub;
let store: SqlStore;
let cleanup: () => Promise<void>;
let t: TestApp;
let keys: { agent: string; member: string };

beforeAll(async () => {
  github = await startFakeGitHub();
  ({ store, cleanup } = await freshStore('sqlite', null));
  t = await testApp(store, {
    github: { appId: github.appId, privateKey: github.privateKey, baseUrl: github.url, checkName: 'runwall egress', publicUrl: 'https://runwall.example.test' },
  });
  keys = await t.tenant('acme');
});
afterAll(async () => {
  await t.app.close();
  await cleanup();
  await github.close();
});

describe('GitHub check runs', () => {
  it('posts one completed check run with the verdict on the run\'s commit, as the App', async () => {
    const sha = 'a'.repeat(40);
    const report = makeReport({ runId: 'gh-1', repo: 'acme/app', sha, destinations: [{ name: 'registry.test' }, { name: 'evil.test', verdict: 'attack-blocked' }] });
    expect((await t.call('POST', '/api/v1/runs', { key: keys.agent, body: report })).statusCode).toBe(201);
    await t.drain();
    expect(github.checkRuns).toHaveLength(1);
    expect(github.checkRuns[0]).toMatchObject({
      name: 'runwall egress',
      head_sha: sha,
      status: 'completed',
      conclusion: 'failure',
      external_id: 'gh-1',
      details_url: 'https://runwall.example.test/#/runs/gh-1',
      output: { title: expect.stringContaining('Attack Blocked') },
    });
    expect((github.checkRuns[0]?.output as { summary: string }).summary).toContain('`evil.test:443` — Attack Blocked');
    const paths = github.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(['GET /repos/acme/app/installation', 'POST /app/installations/77/access_tokens', 'POST /repos/acme/app/check-runs']);
    const detail = (await t.call('GET', '/api/v1/runs/gh-1', { key: keys.member })).json();
    expect(detail.check).toEqual({ runId: 'gh-1', state: 'posted', checkId: '555', error: null });
    // A retried upload does not post a second check.
    await t.call('POST', '/api/v1/runs', { key: keys.agent, body: report });
    await t.drain();
    expect(github.checkRuns).toHaveLength(1);
  });

  it('records a GitHub failure on the run instead of failing the upload', async () => {
    github.failChecksWith(500);
    try {
      const report = makeReport({ runId: 'gh-2', repo: 'acme/app', sha: 'b'.repeat(40), destinations: [{ name: 'registry.test' }] });
      expect((await t.call('POST', '/api/v1/runs', { key: keys.agent, body: report })).statusCode).toBe(201);
      await t.drain();
      const detail = (await t.call('GET', '/api/v1/runs/gh-2', { key: keys.member })).json();
      expect(detail.check).toMatchObject({ state: 'failed', error: expect.stringMatching(/RW_GITHUB_FAILED|GitHub creating the check run .* failed \(HTTP 500\)/) });
    } finally {
      github.failChecksWith(null);
    }
  });

  it('does not post for runs without a GitHub commit', async () => {
    const before = github.checkRuns.length;
    const report = makeReport({ runId: 'local-1', destinations: [{ name: 'registry.test' }] });
    await t.call('POST', '/api/v1/runs', { key: keys.agent, body: report });
    await t.drain();
    expect(github.checkRuns).toHaveLength(before);
  });

  it('writes a title a person understands for each verdict', () => {
    const base = { runId: 'x', surface: 'exec', host: 'h', repo: 'a/b', workflow: 'w', job: 'j', mode: 'audit' as const, startedAt: '', endedAt: null, exitCode: 0, complete: true, sha: null, ref: null, ciRunId: null, report: null, detections: [] };
    const counts = { events: 5, allowed: 3, blocked: 0, attackBlocked: 0, audit: 2, detections: 0 };
    expect(checkOutput({ ...base, verdict: 'audit', counts }).title).toBe('Audit: 2 event(s) would be blocked in block mode');
    expect(checkOutput({ ...base, verdict: 'allowed', counts: { ...counts, audit: 0 } }).title).toBe('Allowed: 5 event(s), nothing blocked');
  });
});
