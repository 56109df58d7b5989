// `runwall server` as a user starts it: the real command through tsx, on a fresh SQLite file, then again on the same file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultDatabase, parsePort } from '../../src/cli/server-command.js';
import { startPostgres } from './helpers/postgres.js';

const REPO = resolve(import.meta.dirname, '../..');
// The servers run in a scratch directory (the default database is relative to it): load tsx by path.
const TSX = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
const dir = mkdtempSync(join(tmpdir(), 'runwall-cli-server-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `runwall server`, resolves with its output once it prints its URL (bounded wait). */
function start(args: string[], env: NodeJS.ProcessEnv = {}, until = /listening on/): Promise<{ child: ChildProcess; output: () => string; url: string }> {
  const child = spawn(process.execPath, ['--import', TSX, join(REPO, 'src/cli/main.ts'), 'server', ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s: ${out}`)), 20_000);
    const check = () => {
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url && until.test(out)) {
        clearTimeout(timer);
        resolvePromise({ child, output: () => out, url });
      }
    };
    child.stdout?.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolvePromise) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolvePromise(code));
    child.kill('SIGTERM');
  });
}

// Each start compiles the CLI through tsx and bundles the web app: slow on a busy machine.
const SLOW = 90_000;

describe('runwall server', () => {
  it('prints its URL and a first operator key on first start, and serves the API and the web app', async () => {
    const { child, output, url } = await start(['--port', '0'], { RUNWALL_DATA: join(dir, 'data') }, /Sign in:.*\n/);
    expect(output()).toContain(`database sqlite:${join(dir, 'data', 'runwall.db')}`);
    const key = /API key:\s+(rwk_\S+)/.exec(output())?.[1];
    expect(key).toBeDefined();
    const me = await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(await me.json()).toMatchObject({ tenant: 'default', role: 'operator' });
    const page = await fetch(`${url}/`);
    expect(await page.text()).toContain('/assets/web/main.js');
    const script = await fetch(`${url}/assets/web/main.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect(await stop(child)).toBe(0);

    // Second start on the same database: no new key, the old one still works.
    const again = await start(['--port', '0'], { RUNWALL_DATA: join(dir, 'data') });
    expect(again.output()).not.toContain('First start');
    const still = await fetch(`${again.url}/api/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(still.status).toBe(200);
    expect(await stop(again.child)).toBe(0);
  }, SLOW);

  it('refuses a database it does not know and a bad port, with a usage error', async () => {
    expect(() => parsePort('70000')).toThrow(/--port must be a number from 0 to 65535/);
    const child = spawn(process.execPath, ['--import', TSX, join(REPO, 'src/cli/main.ts'), 'server', '--database', 'mysql://x'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(251);
    expect(err).toContain("RW_USAGE: --database 'mysql://x' must start with 'sqlite:' or 'postgres://'");
  }, SLOW);

  it('runs as two processes on one PostgreSQL that behave as one service', async () => {
    const pg = await startPostgres();
    try {
      // Both start at once on an empty database: migrations and the first-start set-up happen once.
      const [a, b] = await Promise.all([start(['--port', '0', '--database', pg.url]), start(['--port', '0', '--database', pg.url])]);
      const printed = [a.output(), b.output()].filter((o) => o.includes('First start'));
      expect(printed).toHaveLength(1);
      const key = /API key:\s+(rwk_\S+)/.exec(printed[0] ?? '')?.[1] ?? '';
      const auth = { authorization: `Bearer ${key}` };
      const login = await fetch(`${a.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: key }) });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
      expect((await fetch(`${b.url}/api/v1/me`, { headers: { cookie } })).status).toBe(200);
      const etag = (await fetch(`${b.url}/api/v1/blocklist`, { headers: auth })).headers.get('etag') ?? '';
      const added = await fetch(`${a.url}/api/v1/blocklist`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ entry: 'evil.test', reason: 'test' }) });
      expect(added.status).toBe(201);
      const polled = await fetch(`${b.url}/api/v1/blocklist`, { headers: { ...auth, 'if-none-match': etag } });
      expect(polled.status).toBe(200);
      expect(((await polled.json()) as { entries: { text: string }[] }).entries.map((e) => e.text)).toEqual(['evil.test']);
      expect(await stop(a.child)).toBe(0);
      expect(await stop(b.child)).toBe(0);
    } finally {
      await pg.stop();
    }
  }, SLOW);

  it('defaults to a file under $RUNWALL_DATA, else ./.runwall', () => {
    expect(defaultDatabase({ RUNWALL_DATA: '/var/lib/runwall' })).toBe('sqlite:/var/lib/runwall/runwall.db');
    expect(defaultDatabase({})).toBe('sqlite:.runwall/runwall.db');
  });
});
