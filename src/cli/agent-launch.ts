/**
 * `runwall agent start` (as a daemon): the daemon is spawned while this module is evaluated,
 * before the CLI's other modules run, and says on a pipe of its own when it enforces.
 *
 * Why so early: `agent start` must return once the machine is guarded, and the daemon's
 * start is most of that time. Spawned after the CLI had parsed its arguments (loading
 * commander, the policy parser and the agent's code, 100-150 ms here), the daemon began
 * that much later. The daemon parses and checks the same arguments itself and exits with
 * the error a CLI check would have given (agent-launch-report.ts makes it this command's):
 * nothing is checked only here, and nothing here can leave anything half set up.
 *
 * Only node builtins and memory-flags.ts are imported: any other import would be evaluated
 * before the spawn.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { AGENT_DAEMON_MALLOC_ENV, AGENT_DAEMON_NODE_OPTIONS } from './memory-flags.js';

/** Where the agent keeps its control socket, state and log unless told otherwise (agentPaths in src/agent agrees; a test holds them in step). */
export const DEFAULT_AGENT_STATE_DIR = '/run/runwall/agent';
/** How long `agent start` waits for the daemon to enforce. */
export const AGENT_START_TIMEOUT_MS = 15_000;
/** The daemon's end of the readiness pipe (`--ready-fd`). */
const READY_FD = 3;

export type AgentLaunchOutcome =
  /** The daemon's status, as the JSON line it wrote once enforcing. */
  | { readonly kind: 'ready'; readonly statusLine: string }
  /** It ended before it enforced: its exit status and the last line of its log (its error). */
  | { readonly kind: 'exited'; readonly status: number; readonly lastLogLine: string; readonly log: string }
  | { readonly kind: 'timed-out'; readonly log: string };

/** Defined (true) by the bundled build (scripts/bundle-cli.ts); undefined under tsc's output and tsx. */
declare const RUNWALL_BUNDLED: boolean | undefined;

/** l7-preload.ts (bundled: dist/cli/l7-preload.js, this code then sitting in dist/chunks/), as a URL, when it is there. */
export function l7PreloadUrl(): string | null {
  const here = import.meta.url;
  const bundled = typeof RUNWALL_BUNDLED !== 'undefined' && RUNWALL_BUNDLED;
  const preload = new URL(bundled ? '../cli/l7-preload.js' : here.endsWith('.ts') ? './l7-preload.ts' : './l7-preload.js', here);
  return existsSync(fileURLToPath(preload)) ? preload.href : null;
}

/** `runwall exec` (not its help, not with `--l7 off`): its L7 thread is started first thing (main.ts). */
export function execStartsL7(argv: readonly string[]): boolean {
  const rest = argv.slice(2);
  // runwall's own options only: what follows `--` is the job's command line.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  const checkOff = own.some((arg, i) => arg === '--l7=off' || (arg === '--l7' && own[i + 1] === 'off'));
  return rest[0] === 'exec' && !checkOff && !own.some((arg) => arg === '--help' || arg === '-h');
}

/** `agent start` without --foreground and without a request for help: the daemon is launched. */
export function launchesDaemon(argv: readonly string[]): boolean {
  const rest = argv.slice(2);
  return rest[0] === 'agent' && rest[1] === 'start' && !rest.some((arg) => arg === '--foreground' || arg === '--help' || arg === '-h');
}

/** The state directory the arguments name (the hidden --state-dir, then RUNWALL_AGENT_DIR, then the default). */
export function stateDirOf(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  let named: string | undefined;
  argv.forEach((arg, i) => {
    if (arg === '--state-dir') named = argv[i + 1];
    else if (arg.startsWith('--state-dir=')) named = arg.slice('--state-dir='.length);
  });
  return named || env['RUNWALL_AGENT_DIR'] || DEFAULT_AGENT_STATE_DIR;
}

/**
 * The daemon's environment. NODE_EXTRA_CA_CERTS goes: Node reads and parses that file as it
 * starts (35-70 ms of the daemon's start here, where CI images point it at the whole system
 * bundle), and the agent makes no TLS connection of its own. glibc's malloc settings come in
 * (AGENT_DAEMON_MALLOC_ENV), unless the caller set its own.
 */
export function daemonEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _dropped, ...rest } = env;
  return { ...AGENT_DAEMON_MALLOC_ENV, ...rest };
}

/** The first line written on `stream`, or null if it closed without one. */
function firstLine(stream: Readable): Promise<string | null> {
  return new Promise((resolve) => {
    let text = '';
    const done = (line: string | null): void => {
      stream.removeAllListeners('data');
      stream.destroy();
      resolve(line);
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) done(text.slice(0, end));
    });
    stream.once('end', () => done(null));
    stream.once('error', () => done(null));
  });
}

function lastLineOf(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').at(-1) ?? '';
  } catch {
    return '';
  }
}

/** Spawns `runwall agent start ... --foreground --ready-fd 3` detached, its output appended to STATE_DIR/agent.log, and waits (bounded) for it to enforce. */
export async function launchAgentDaemon(argv: readonly string[], execArgv: readonly string[], env: NodeJS.ProcessEnv): Promise<AgentLaunchOutcome> {
  const stateDir = stateDirOf(argv, env);
  const log = `${stateDir}/agent.log`;
  // Said here, as the daemon would say it: without root there is no log to read its words from.
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { kind: 'exited', status: 1, lastLogLine: 'runwall: RW_NOT_ROOT: runwall agent needs root (run it with sudo)', log };
  }
  let out: number;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    out = openSync(log, 'a', 0o600);
  } catch (error: unknown) {
    return { kind: 'exited', status: 1, lastLogLine: `runwall: RW_SETUP_FAILED: cannot open ${log}: ${error instanceof Error ? error.message : String(error)}`, log };
  }
  // No L7 preload: the daemon judges L7 in its own thread (agent-daemon.ts), not in a worker started early.
  const args = [...AGENT_DAEMON_NODE_OPTIONS, ...execArgv, argv[1] ?? '', ...argv.slice(2), '--foreground', '--ready-fd', String(READY_FD)];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out, 'pipe'], env: daemonEnvironment(env) });
  closeSync(out);
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.once('error', () => resolve(127));
  });
  child.unref();
  const pipe = child.stdio[READY_FD] as Readable;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed-out'>((resolve) => (timer = setTimeout(() => resolve('timed-out'), AGENT_START_TIMEOUT_MS)));
  const line = await Promise.race([firstLine(pipe), timedOut]);
  clearTimeout(timer);
  if (line === 'timed-out') {
    child.kill('SIGKILL');
    pipe.destroy();
    return { kind: 'timed-out', log };
  }
  if (line === null) {
    // It closed the pipe without a status, so it is ending: wait for its status (the child was unref'd, so ref it).
    child.ref();
    return { kind: 'exited', status: await exited, lastLogLine: existsSync(log) ? lastLineOf(log) : '', log };
  }
  return { kind: 'ready', statusLine: line };
}

/** The fields of the daemon's status line (AgentStatus in src/agent) that `agent start` prints. */
interface LaunchedStatus {
  readonly pid: number;
  readonly mode: string;
  readonly enforcingAfterMs: number;
  readonly resolvers: readonly string[];
  readonly control: string;
}

/** What `agent start` prints for a daemon that enforces. */
export function enforcingLine(statusLine: string): string {
  const status = JSON.parse(statusLine) as LaunchedStatus;
  return `runwall agent: enforcing ${status.mode} mode (pid ${status.pid}), ${status.enforcingAfterMs} ms after start; resolver ${status.resolvers.join(', ')}; control ${status.control}\n`;
}

/** Started as this module is evaluated (see above); null when this run of the CLI launches no daemon. */
export const earlyAgentLaunch: Promise<AgentLaunchOutcome> | null = launchesDaemon(process.argv)
  ? launchAgentDaemon(process.argv, process.execArgv, process.env)
  : null;
