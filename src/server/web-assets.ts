/**
 * The web app's files. From a build (dist/), the browser modules tsc compiled
 * from src/server/web/ are served as they are; from sources (tsx, tests),
 * esbuild bundles src/server/web/main.ts in memory. Either way the page loads
 * /assets/web/main.js.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunwallError } from '../protocol/index.js';
import type { WebAssets } from './api/routes-web.js';
import { WEB_CSS, webHtml } from './web-shell.js';

/** Defined (true) by the bundled build (scripts/bundle-cli.ts); undefined under tsc's output and tsx. */
declare const RUNWALL_BUNDLED: boolean | undefined;

// Bundled, this code sits in dist/chunks/ and tsc's browser modules stay in dist/server/web/.
const WEB_DIR =
  typeof RUNWALL_BUNDLED !== 'undefined' && RUNWALL_BUNDLED ? fileURLToPath(new URL('../server/web', import.meta.url)) : join(dirname(fileURLToPath(import.meta.url)), 'web');

export async function loadWebAssets(): Promise<WebAssets> {
  const files = new Map<string, string>();
  if (existsSync(join(WEB_DIR, 'main.js'))) {
    for (const name of readdirSync(WEB_DIR)) {
      if (/^[a-z0-9-]+\.js(\.map)?$/.test(name)) files.set(name, readFileSync(join(WEB_DIR, name), 'utf8'));
    }
  } else if (existsSync(join(WEB_DIR, 'main.ts'))) {
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch (error) {
      throw new RunwallError('RW_INTERNAL', `the web app is only in TypeScript here and esbuild is not installed to bundle it: ${String(error)}`);
    }
    const result = await esbuild.build({
      entryPoints: [join(WEB_DIR, 'main.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      target: 'es2022',
      platform: 'browser',
      logLevel: 'silent',
    });
    const output = result.outputFiles[0];
    if (!output) throw new RunwallError('RW_INTERNAL', 'esbuild produced no bundle for the web app');
    files.set('main.js', output.text);
  } else {
    throw new RunwallError('RW_INTERNAL', `the web app is missing: neither ${WEB_DIR}/main.js nor main.ts exists`);
  }
  return { html: webHtml(), css: WEB_CSS, files };
}
