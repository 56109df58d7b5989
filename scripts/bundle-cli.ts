/**
 * `npm run build`, second half: bundles the CLI with esbuild over what tsc wrote to dist/.
 *
 * Why: run as hundreds of small ES modules (TypeBox alone is 266 files), the CLI spent
 * ~250 ms loading before `runwall agent start` could enforce anything, and the L7 worker
 * thread paid it again before it read its queue. A bundle parses in a few milliseconds.
 *   - dist/cli/main.js: the `runwall` command (package.json's bin), split into dist/chunks/
 *     so a subcommand loads only its own code (`exec` never loads the server's drivers);
 *   - dist/agent/l7/l7-worker.js: the L7 worker thread's module, one file on its own.
 * The rest of tsc's output stays: the web app's browser modules are served from dist/server/web/.
 * Packages with native parts, or used only by the server, stay in node_modules (external).
 * Code that finds files relative to itself (the worker, the web app) knows the layout
 * through RUNWALL_BUNDLED; this script checks that such code did land in dist/chunks/.
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

const EXTERNAL = ['koffi', 'better-sqlite3', 'pg', 'fastify', '@octokit/rest', '@actions/core', 'esbuild'];

/** Bundled CommonJS packages (commander) call require() for node builtins: give the ES module a real one. */
const REQUIRE_BANNER = 'import { createRequire as __runwallCreateRequire } from "node:module"; const require = __runwallCreateRequire(import.meta.url);';

/** Sources that locate files relative to their own module, and so must sit in dist/chunks/ once bundled. */
const SELF_LOCATING = ['src/agent/l7/l7-worker-thread.ts', 'src/cli/agent-launch.ts', 'src/server/web-assets.ts'];

/**
 * runwall's own modules run nothing when imported but for these: the rest are marked free of side
 * effects, so esbuild leaves out a module none of whose exports is used. Without it a chunk holds
 * everything its part's index re-exports: the L7 worker carried yaml and TypeBox (360 of its 489 KB)
 * for a policy it receives already parsed, and `agent start` compiled them before it could enforce.
 */
const WITH_SIDE_EFFECTS = new Set(['src/cli/main.ts', 'src/cli/memory-flags.ts', 'src/cli/agent-launch.ts', 'src/cli/l7-preload.ts'].map((path) => join(REPO, path)));
const SRC = join(REPO, 'src') + '/';
/** Packages that only define things when imported (their package.json does not say so). */
const PURE_PACKAGES = /^(yaml|@sinclair\/typebox)(\/|$)/;

const ownModulesSideEffectFree: Plugin = {
  name: 'runwall-own-modules-side-effect-free',
  setup(plugin) {
    plugin.onResolve({ filter: /^(\.\.?\/|yaml$|yaml\/|@sinclair\/typebox)/ }, async (args) => {
      if (args.pluginData === 'resolving') return undefined;
      const resolved = await plugin.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
      const ours = resolved.path.startsWith(SRC) && !WITH_SIDE_EFFECTS.has(resolved.path);
      if (resolved.errors.length > 0 || !(ours || PURE_PACKAGES.test(args.path))) return resolved;
      return { ...resolved, sideEffects: false };
    });
  },
};

export const common: BuildOptions = {
  absWorkingDir: REPO,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  external: EXTERNAL,
  banner: { js: REQUIRE_BANNER },
  define: { RUNWALL_BUNDLED: 'true' },
  // V8 keeps every module's source in the heap, as two-byte strings when a comment holds a non-ASCII
  // character: without comments and indentation the agent idles 2.5-2.8 MB lower. Names stay; source maps map back.
  minifyWhitespace: true,
  logLevel: 'warning',
  plugins: [ownModulesSideEffectFree],
};

function outputsHolding(metafile: Metafile, source: string): string[] {
  return Object.entries(metafile.outputs)
    .filter(([, output]) => Object.keys(output.inputs).some((input) => input.endsWith(source)))
    .map(([path]) => path);
}

/** Bundles into `dist` (tsc's output directory; its dist/server/web/ is what the web app serves). */
export async function bundleCli(dist: string): Promise<void> {
  // Chunk names carry a content hash: an earlier build's would pile up.
  rmSync(join(dist, 'chunks'), { recursive: true, force: true });
  const cli = await build({
    ...common,
    entryPoints: { 'cli/main': 'src/cli/main.ts' },
    outdir: dist,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
  });
  for (const source of SELF_LOCATING) {
    const holding = outputsHolding(cli.metafile, source).filter((path) => !path.endsWith('.map'));
    if (holding.length === 0) throw new Error(`${source} is not in the bundle: update SELF_LOCATING in scripts/bundle-cli.ts`);
    const misplaced = holding.filter((path) => !relative(dist, join(REPO, path)).startsWith('chunks/'));
    if (misplaced.length > 0) throw new Error(`${source} was bundled into ${misplaced.join(', ')}, not chunks/: the paths it computes would be wrong`);
  }
  // On its own, not sharing chunks with the CLI: a worker thread loads every module again, so it gets only what it uses.
  await build({ ...common, entryPoints: { 'agent/l7/l7-worker': 'src/agent/l7/l7-worker.ts' }, outdir: dist });
  // Also on its own: `runwall exec` loads it before the rest of the CLI (src/cli/main.ts), so it must load nothing but the worker's start.
  await build({ ...common, entryPoints: { 'cli/l7-preload': 'src/cli/l7-preload.ts' }, outdir: dist });
  chmodSync(join(dist, 'cli/main.js'), 0o755);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundleCli(join(REPO, 'dist'));
