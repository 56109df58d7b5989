// `make demo`: a sample build under `runwall exec` in block mode against the project's own test
// internet, its report in the terminal, then `runwall server` on SQLite with the run uploaded.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInternet } from '../test/helpers/internet.js';

const REPO = resolve(import.meta.dirname, '..');
const OUT = join(REPO, 'demo-out');
const RUNWALL = [process.execPath, join(REPO, 'dist/cli/main.js')];
const PORT = process.env['RUNWALL_DEMO_PORT'] ?? '8080';
mkdirSync(OUT, { recursive: true });

const internet = await createInternet({ name: 'demo' });
let exitCode = 0;
try {
  const reportPath = join(OUT, 'report.json');
  console.log('runwall demo: running demo/sample-build.sh under runwall exec --egress-policy block\n');
  const run = await internet.runInHost(
    [
      ...RUNWALL, 'exec',
      '--egress-policy', 'block',
      '--allowed-endpoints', 'allowed.test:443 *.allowed.test:443',
      '--block-list', join(REPO, 'demo/block-list.txt'),
      '--dns-upstream', internet.upstream.v4,
      '--report', reportPath,
      '--events', join(OUT, 'events.jsonl'),
      '--', join(REPO, 'demo/sample-build.sh'),
    ],
    { cwd: REPO, timeoutMs: 120_000 },
  );
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  const printed = await internet.runInHost([...RUNWALL, 'report', reportPath], { cwd: REPO });
  console.log('\n' + printed.stdout);

  // The insights server, on SQLite, in this machine's own namespace (loopback only).
  const database = join(OUT, 'runwall.db');
  const server = spawn(RUNWALL[0]!, [RUNWALL[1]!, 'server', '--port', PORT, '--database', `sqlite:${database}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let banner = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`runwall server did not start: ${banner}`)), 20_000);
    server.stdout.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      // A fresh database: the server prints its URL, then the first API key.
      const match = /listening on (\S+)/.exec(banner);
      if (match && /API key:\s+\S+/.test(banner)) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`runwall server exited (${code}): ${banner}`)));
  });
  const apiKey = /API key:\s+(\S+)/.exec(banner)![1]!;
  const upload = await fetch(`${url}/api/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: readFileSync(reportPath),
  });
  if (!upload.ok) throw new Error(`upload failed: ${upload.status} ${await upload.text()}`);
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { run: { runId: string } };
  console.log(banner.trim());
  console.log(`\nrunwall demo: report ${reportPath}`);
  console.log(`runwall demo: open ${url}/#/runs/${encodeURIComponent(report.run.runId)}/summary (sign in with the credentials above)`);
  if (process.env['CI'] || process.env['RUNWALL_DEMO_EXIT'] === '1') {
    server.kill('SIGTERM');
  } else {
    console.log('runwall demo: the server keeps running; Ctrl-C stops it.');
    await new Promise<void>((done) => {
      process.once('SIGINT', () => done());
      server.on('exit', () => done());
    });
    server.kill('SIGTERM');
  }
} catch (error: unknown) {
  console.error(`runwall demo: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = 1;
} finally {
  await internet.destroy();
}
process.exit(exitCode);
