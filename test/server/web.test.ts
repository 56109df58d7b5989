// The web app in real Chromium: sign in, filter runs, open a run's tabs, replay a policy, manage policies and the block list.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/protocol/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { launchChromium } from './helpers/browser.js';
import { destinationEvents, makeReport } from './helpers/reports.js';

let dir: string;
let server: RunningServer;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

async function upload(path: string, body: unknown): Promise<void> {
  const response = await fetch(`${server.url}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.firstStart!.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
}

/** A run of the `build` job with steps, processes, files and HTTPS requests. */
function richEvents(extra: string | null): RunEvent[] {
  const t = (s: number) => new Date(Date.parse('2026-11-20T10:00:00Z') + s * 1000).toISOString();
  const events: RunEvent[] = [
    { kind: 'step', seq: 1, time: t(0), action: 'begin', id: 'step-1', name: 'Install dependencies' },
    { kind: 'process', seq: 2, time: t(0), action: 'exec', pid: 100, ppid: 1, exe: '/usr/bin/bash', argv: ['bash', '-e', 'build.sh'], step: 'step-1' },
    { kind: 'process', seq: 3, time: t(1), action: 'exec', pid: 101, ppid: 100, exe: '/usr/bin/npm', argv: ['npm', 'ci'], step: 'step-1' },
  ];
  const network = destinationEvents(
    [
      { name: 'registry.test', exe: '/usr/bin/npm', step: 'step-1' },
      ...(extra ? [{ name: extra, exe: '/usr/bin/curl', step: 'step-1', verdict: 'audit' as const }] : []),
    ],
    4,
    t(2),
  ).map((e) => (e.process ? { ...e, process: { ...e.process, ancestry: [{ pid: 100, exe: '/usr/bin/bash' }] } } : e));
  events.push(...network);
  let seq = events.length + 1;
  events.push({ kind: 'http', seq: seq++, time: t(5), host: 'registry.test', destination: '198.51.100.1', port: 443, tls: true, method: 'GET', path: '/left-pad', status: 200, verdict: 'allowed', rule: { source: 'allowed-endpoints', explanation: 'ok' } });
  for (let i = 0; i < 130; i++) {
    events.push({ kind: 'file', seq: seq++, time: t(6 + i / 100), action: 'write', path: `/work/node_modules/pkg-${i}/index.js`, source: false, process: { pid: 101, exe: '/usr/bin/npm' } });
  }
  events.push({ kind: 'step', seq: seq++, time: t(9), action: 'end', id: 'step-1', name: 'Install dependencies', outcome: 'success' });
  return events;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runwall-web-'));
  server = await startServer({ host: '127.0.0.1', port: 0, database: { kind: 'sqlite', path: join(dir, 'runwall.db') } });
  // 60 ordinary runs (more than one page), then three runs of one job, the last reaching a new destination.
  for (let i = 0; i < 60; i++) {
    const report = makeReport({ runId: `bulk-${i}`, repo: 'acme/bulk', startedAt: new Date(Date.parse('2026-11-01T00:00:00Z') + i * 60_000).toISOString(), destinations: [{ name: 'registry.test' }] });
    await upload('/runs', report);
  }
  for (const [i, extra] of [null, null, 'api.ipify.test'].entries()) {
    const base = makeReport({ runId: `build-${i + 1}`, repo: 'acme/app', job: 'build', mode: 'audit', startedAt: `2026-11-2${i}T10:00:00.000Z`, destinations: [] });
    const events = richEvents(extra);
    await upload('/runs', { ...base, events, summary: { ...base.summary, destinations: [{ name: 'registry.test', addresses: ['198.51.100.1'], port: 443, protocol: 'tcp', count: 2, verdict: 'allowed', processes: ['/usr/bin/npm'] }] } });
  }
  await upload('/runs', makeReport({ runId: 'attack-1', repo: 'acme/app', job: 'deploy', startedAt: '2026-11-25T10:00:00.000Z', destinations: [{ name: 'registry.test' }, { name: 'evil.test', verdict: 'attack-blocked', exe: '/usr/bin/curl' }] }));
  browser = await launchChromium();
  page = await browser.context.newPage();
  // A missing element fails its own step quickly, naming the selector, well inside the test's time.
  page.setDefaultTimeout(8000);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('web app in Chromium', () => {
  it('signs in and lists runs newest first, one page at a time', async () => {
    await page.goto(server.url);
    await page.waitForSelector('#password-login');
    await page.fill('#password-login input[name=email]', server.firstStart!.email);
    await page.fill('#password-login input[name=password]', server.firstStart!.password);
    await page.click('#password-login button');
    await page.waitForSelector('#runs tbody tr');
    const first = await page.locator('#runs tbody tr').first().getAttribute('data-run');
    expect(first).toBe('attack-1');
    expect(await page.locator('#runs tbody tr').count()).toBe(50);
    await page.screenshot({ path: join(tmpdir(), 'runwall-web-runs.png') });
    await page.click('text=Next page');
    await page.waitForFunction(() => document.querySelector('.pager .muted')?.textContent === 'Page 2');
    expect(await page.locator('#runs tbody tr').count()).toBe(14);
    expect(await page.locator('#who').textContent()).toContain('admin@runwall.local');
  });

  it('filters by verdict and shows "Attack Blocked"', async () => {
    await page.selectOption('select[data-filter=verdict]', 'attack-blocked');
    await page.click('form.filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length === 1);
    expect(await page.locator('#runs tbody tr td').first().textContent()).toBe('Attack Blocked');
    await page.click('#runs tbody tr');
    await page.waitForSelector('#tab-body .counts');
    expect(await page.locator('h1 .badge').textContent()).toBe('Attack Blocked');
    expect(await page.locator('#tab-body').textContent()).toContain('evil.test');
  });

  it('shows a run\'s summary with the chart, the baseline detection and HTTPS requests', async () => {
    await page.goto(`${server.url}/#/runs/build-3/summary`);
    await page.waitForSelector('svg.chart rect[data-series]');
    const text = (await page.locator('#tab-body').textContent()) ?? '';
    expect(text).toContain('New destination for this job: api.ipify.test');
    expect(text).toContain('GET /left-pad');
    expect(text).toContain('registry.test');
    await page.screenshot({ path: join(tmpdir(), 'runwall-web-summary.png'), fullPage: true });
  });

  it('shows the network per step and process chain, the process tree and paged files', async () => {
    await page.click('[data-tab=network]');
    await page.waitForSelector('#network-tree');
    const step = page.locator('#network-tree > li').first();
    expect(await step.getAttribute('data-step')).toBe('Install dependencies');
    const tree = (await page.locator('#network-tree').textContent()) ?? '';
    expect(tree).toContain('/usr/bin/bash › /usr/bin/curl');
    expect(await page.locator('[data-destination="api.ipify.test:443"] .badge').textContent()).toBe('Audit');
    await page.screenshot({ path: join(tmpdir(), 'runwall-web-network.png'), fullPage: true });
    await page.click('[data-tab=processes]');
    await page.waitForSelector('#process-tree');
    expect(await page.locator('#process-tree [data-pid="101"]').textContent()).toContain('npm ci');
    await page.click('[data-tab=files]');
    await page.waitForSelector('#files tbody tr');
    expect(await page.locator('#files tbody tr').count()).toBe(100);
    await page.click('text=Next');
    await page.waitForFunction(() => document.querySelectorAll('#files tbody tr').length === 30);
  });

  it('recommends a policy over the job\'s runs, diffs it and replays a candidate', async () => {
    await page.click('[data-tab=recommended]');
    await page.waitForSelector('#recommended');
    expect(await page.locator('#recommended').textContent()).toBe('api.ipify.test:443\nregistry.test:443');
    expect(await page.locator('#policy-diff').textContent()).toContain('+ api.ipify.test:443');
    await page.fill('#candidate', 'registry.test:443');
    await page.click('#replay-button');
    await page.waitForSelector('[data-replay-run="build-3"]');
    expect(await page.locator('[data-replay-run="build-3"]').textContent()).toContain('api.ipify.test:443');
    expect(await page.locator('[data-replay-run="build-1"]').textContent()).toContain('nothing');
    await page.screenshot({ path: join(tmpdir(), 'runwall-web-recommended.png'), fullPage: true });
    await page.click('[data-tab=permissions]');
    await page.waitForSelector('#permissions-absent');
    expect(await page.locator('#permissions-absent').textContent()).toBe('Token permissions were not recorded for this run.');
  });

  it('lets an administrator store a policy, attach it, and change the block list', async () => {
    await page.click('#nav >> text=Policies');
    await page.waitForSelector('#policy-form');
    await page.fill('#policy-form input[name=name]', 'app-build');
    await page.selectOption('#policy-form select', 'block');
    await page.fill('#policy-form textarea', 'registry.test:443\napi.ipify.test');
    await page.click('#policy-form button[type=submit]');
    await page.waitForSelector('[data-policy="app-build"]');
    expect(await page.locator('main table').first().textContent()).toContain('api.ipify.test:443');
    await page.fill('#attach-form input[name=org]', 'acme');
    await page.fill('#attach-form input[name=repo]', 'acme/app');
    await page.click('#attach-form button');
    await page.waitForFunction(() => document.body.textContent?.includes('acme › acme/app'));
    await page.fill('#policy-form input[name=name]', 'broken');
    await page.fill('#policy-form textarea', 'github.test:99999');
    await page.click('#policy-form button[type=submit]');
    await page.waitForSelector('.error');
    expect(await page.locator('.error').textContent()).toContain('RW_ENDPOINT_INVALID');

    await page.click('#nav >> text=Block list');
    await page.waitForSelector('#block-form');
    await page.fill('#block-form input[name=entry]', '*.ipify.test');
    await page.fill('#block-form input[name=reason]', 'IP lookup used before exfiltration');
    await page.click('#block-form button');
    await page.waitForSelector('[data-entry="*.ipify.test"]');
    await page.screenshot({ path: join(tmpdir(), 'runwall-web-blocklist.png'), fullPage: true });
    await page.click('button:text-is("Retire")');
    await page.waitForSelector('text=The block list is empty.');
  });

  it('signs out, and the runs are then out of reach', async () => {
    await page.click('#sign-out');
    await page.waitForSelector('#password-login');
    const response = await page.evaluate(async () => (await fetch('/api/v1/runs')).status);
    expect(response).toBe(401);
  });
});
