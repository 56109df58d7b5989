// Runs TypeScript inside a network namespace and returns its JSON result.
//
// A Node thread cannot switch network namespaces safely, so code that must act in
// a test's namespace (libnftables, NFLOG, sockets) runs in a child started with
// `nsenter --net=/run/netns/NAME node --import tsx`. The child module's default
// export is called with `input`; what it returns (JSON) is what runInNetns resolves
// to; what it throws is rethrown here as InNetnsError with the same code/message.
//
//   const result = await runInNetns(ns, `
//     import { Nftables } from ${srcModule('agent/platform/index.ts')};
//     export default async function (input: { table: string }) { ... return { ... }; }
//   `, { table: 't' });
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const RUNNER = resolve(import.meta.dirname, 'in-netns-runner.ts');
const MARK = '@@in-netns-result@@';
/** Inside node_modules so that the snippet's bare imports (koffi, vitest) resolve, and git ignores it. */
const SNIPPET_DIR = resolve(REPO_ROOT, 'node_modules/.cache/runwall-in-netns');
const DEFAULT_TIMEOUT_MS = 20_000;
let snippetCount = 0;

/** A quoted absolute path of a src module, for an import in a snippet: `import { x } from ${srcModule('agent/platform/index.ts')}`. */
export function srcModule(relative: string): string {
  return JSON.stringify(resolve(REPO_ROOT, 'src', relative));
}

/** A namespace name unique to this test process: `rwt-LABEL-PID`. */
export function testNetnsName(label: string): string {
  return `rwt-${label}-${process.pid}`;
}

export class InNetnsError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly details: unknown,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'InNetnsError';
  }
}

export interface InNetnsOptions {
  /** Kill the child after this long (default 20 s). */
  readonly timeoutMs?: number;
}

/**
 * Runs `module` (a path to a .ts/.js file, or TypeScript source text) in the named
 * namespace (null: this process's namespace) and resolves to its default export's result.
 */
export async function runInNetns<T = unknown>(netns: string | null, module: string, input: unknown = null, options: InNetnsOptions = {}): Promise<T> {
  const isSource = module.includes('\n') || !/\.(ts|js|mjs)$/.test(module);
  if (!isSource && !existsSync(module)) throw new Error(`in-netns: no module ${module}`);
  let path = module;
  if (isSource) {
    mkdirSync(SNIPPET_DIR, { recursive: true });
    path = resolve(SNIPPET_DIR, `snippet-${process.pid}-${++snippetCount}.ts`);
    writeFileSync(path, module);
  }
  try {
    return await runChild<T>(netns, path, input, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  } finally {
    if (isSource) rmSync(path, { force: true });
  }
}

function runChild<T>(netns: string | null, path: string, input: unknown, timeoutMs: number): Promise<T> {
  const nodeArgs = ['--import', 'tsx', RUNNER, path, JSON.stringify(input)];
  const [command, args] =
    netns === null ? [process.execPath, nodeArgs] : ['nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, ...nodeArgs]];
  return new Promise<T>((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(MARK));
      if (line === undefined) {
        const how = signal === 'SIGKILL' ? `was killed after ${timeoutMs} ms` : `exited ${status ?? signal} without a result`;
        reject(new InNetnsError(`in-netns child ${how}\nstdout: ${stdout}\nstderr: ${stderr}`, undefined, undefined, stderr));
        return;
      }
      // JSON written by in-netns-runner.ts: { ok, result } or { ok: false, error }.
      const outcome = JSON.parse(line.slice(MARK.length)) as
        | { ok: true; result: T }
        | { ok: false; error: { message: string; code?: string; details?: unknown; stack?: string } };
      if (outcome.ok) resolvePromise(outcome.result);
      else reject(new InNetnsError(outcome.error.message, outcome.error.code, outcome.error.details, `${outcome.error.stack ?? ''}\n${stderr}`));
    });
  });
}
