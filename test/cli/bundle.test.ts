// The built `runwall` (npm run build: tsc, then scripts/bundle-cli.ts): the bundle starts, every
// subcommand's chunk loads, and the L7 worker's own bundle is where the bundled inspector looks for it.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNWALL_VERSION } from '../../src/protocol/index.js';
import { bundleCli } from '../../scripts/bundle-cli.js';
import { REPO } from '../helpers/runwall-cli.js';

const run = promisify(execFile);

describe('the bundled CLI', () => {
  let out = '';
  beforeAll(async () => {
    // Inside the checkout, so the packages left external resolve from node_modules as they do from dist/.
    mkdirSync(join(REPO, 'dist'), { recursive: true });
    out = mkdtempSync(join(REPO, 'dist', 'bundle-test-'));
    await bundleCli(out);
  });
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('prints its version, and each subcommand (its own chunk) loads', async () => {
    const main = join(out, 'cli/main.js');
    expect((await run(process.execPath, [main, '--version'])).stdout.trim()).toBe(RUNWALL_VERSION);
    for (const command of [['exec'], ['agent', 'start'], ['report'], ['server']]) {
      const { stdout } = await run(process.execPath, [main, ...command, '--help']);
      expect(stdout).toContain(`Usage: runwall ${command.join(' ')}`);
    }
  });

  it("puts the L7 worker's module where the bundled inspector's chunk resolves it", async () => {
    const chunks = join(out, 'chunks');
    const inspector = readdirSync(chunks).filter((name) => name.endsWith('.js') && readFileSync(join(chunks, name), 'utf8').includes('../agent/l7/l7-worker.js'));
    expect(inspector.length).toBeGreaterThan(0);
    const worker = new URL('../agent/l7/l7-worker.js', pathToFileURL(join(chunks, inspector[0] ?? '')));
    expect(existsSync(worker)).toBe(true);
    const module = (await import(worker.href)) as Record<string, unknown>;
    expect(typeof module['runL7Worker']).toBe('function');
  });
});
