/**
 * Starting the L7 check's worker thread (l7-worker.ts), and starting one early.
 *
 * The thread takes 100-150 ms here to boot a V8 isolate and load its module, and a run
 * does not enforce until it has bound its queue. So src/cli/l7-preload.ts (loaded first
 * thing by `runwall exec`; the agent's daemon judges in its own thread) starts
 * one while the CLI's own modules load; L7Inspector.open adopts it instead of starting one.
 * The thread learns its policy and rules from a `configure` message, sent on adoption.
 *
 * Only node builtins are imported: this is all the preload bundles.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The worker's young generation (V8's default grows to 48 MiB under a burst
 * of flows; `runwall exec` cannot set V8's flags at start, so this is its
 * cap). Measured: 3,000 HTTPS flows in exec peaked 12 MiB lower, no slower.
 * Overflowing it is not an out-of-memory: objects move to the old generation.
 */
const WORKER_YOUNG_GENERATION_MB = 6;

/** Defined (true) by the bundled build (scripts/bundle-cli.ts); undefined under tsc's output and tsx. */
declare const RUNWALL_BUNDLED: boolean | undefined;

/** The worker's module: beside this one, or in the bundled build its own bundle (this code then sits one level below dist/). */
function workerModule(): string {
  if (typeof RUNWALL_BUNDLED !== 'undefined' && RUNWALL_BUNDLED) return fileURLToPath(new URL('../agent/l7/l7-worker.js', import.meta.url));
  return fileURLToPath(import.meta.url).replace(/l7-worker-thread\.(ts|js)$/, 'l7-worker.$1');
}

/**
 * A bootstrap that loads the worker's module. Run from source (tsx), the
 * module is TypeScript and a worker does not inherit tsx's loader, so the
 * bootstrap registers tsx first, resolved from runwall's own directory.
 */
function workerBootstrap(): string {
  const module = workerModule();
  // Only from source: import.meta.resolve finds tsx's ESM entry the way this module's own imports resolve.
  const tsx = module.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : null;
  return [
    '(async () => {',
    tsx ? `  (await import(${JSON.stringify(tsx)})).register();` : '',
    `  await (await import(${JSON.stringify(pathToFileURL(module).href)})).runL7Worker();`,
    // A failure to load is a message too, so the main thread can say what went wrong.
    "})().catch((error) => require('node:worker_threads').parentPort.postMessage({ type: 'failed', code: 'RW_SETUP_FAILED', message: `the L7 check could not load: ${error?.message ?? error}` }));",
  ].join('\n');
}

/** A new worker thread, loading its module; it waits for `configure`. */
export function startL7WorkerThread(): Worker {
  return new Worker(workerBootstrap(), { eval: true, stdout: false, stderr: false, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
}

interface Prestarted {
  readonly worker: Worker;
  /** It ended (or failed to load) before anyone adopted it. */
  ended: boolean;
  /** Takes this module's listeners off the thread (Worker keeps listeners of its own). */
  readonly release: () => void;
}

/** One per process, shared by the preload's copy of this module and the agent's (two copies once bundled). */
const SLOT = Symbol.for('runwall.l7.prestarted-worker');
type Slotted = typeof globalThis & { [SLOT]?: Prestarted };

/** Starts the thread now, to be adopted later; it does not keep the process alive until then. */
export function prestartL7Worker(): void {
  const global = globalThis as Slotted;
  if (global[SLOT] !== undefined || !existsSync(workerModule())) return;
  const worker = startL7WorkerThread();
  const ended = (): void => {
    prestarted.ended = true;
  };
  // Before `configure` it can only say it failed to load; a fresh thread, started on adoption, says so again.
  const failed = (message: { type?: string }): void => {
    if (message.type === 'failed') ended();
  };
  const prestarted: Prestarted = {
    worker,
    ended: false,
    release: () => {
      worker.off('exit', ended).off('error', ended).off('message', failed);
    },
  };
  worker.once('exit', ended).on('error', ended).on('message', failed);
  worker.unref();
  global[SLOT] = prestarted;
}

/** The prestarted thread, if there is a live one (taken once), else a new one. */
export function adoptL7WorkerThread(): Worker {
  const global = globalThis as Slotted;
  const prestarted = global[SLOT];
  delete global[SLOT];
  if (prestarted === undefined) return startL7WorkerThread();
  prestarted.release();
  if (prestarted.ended) {
    void prestarted.worker.terminate();
    return startL7WorkerThread();
  }
  prestarted.worker.ref();
  return prestarted.worker;
}
