/**
 * Network namespaces and links through iproute2, run synchronously: this is the
 * setup path (a few calls per run), not the hot path; a run's network set-up goes
 * through ipBatch, one process for many commands. Every failure quotes ip's own stderr.
 *
 * Commands inside a namespace use `ip -n NAME` or `nsenter --net=PATH`, never
 * `ip netns exec`, which remounts /sys and hides the cgroup paths.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { RunwallError, type ErrorCode } from '../../protocol/index.js';

const NETNS_DIR = '/run/netns';
/** Names ip accepts and that are safe as a path component and an argument. */
const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** A sysctl key as `net.ipv4.ip_forward` or `net/ipv4/conf/eth0.100/forwarding` (slashes keep dots in names). */
const SYSCTL_KEY = /^[A-Za-z0-9_-]+([./][A-Za-z0-9_.-]+)*$/;
const COMMAND_TIMEOUT_MS = 10_000;

export interface NetnsOption {
  /** Run inside this named network namespace (one under /run/netns). */
  readonly netns?: string;
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${checkedName(name)}`;
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RunwallError('RW_SETUP_FAILED', `cannot list ${NETNS_DIR}: ${(error as Error).message}`, {}, { cause: error });
  }
}

/** Creates a named network namespace with its loopback up; RW_SETUP_FAILED if it already exists. */
export function createNetns(name: string): void {
  ip(['netns', 'add', checkedName(name)]);
  try {
    ip(['link', 'set', 'lo', 'up'], { netns: name });
  } catch (error) {
    deleteNetns(name);
    throw error;
  }
}

/** Deletes a named network namespace; nothing happens if it does not exist. */
export function deleteNetns(name: string): void {
  if (!netnsExists(name)) return;
  run('ip', ['netns', 'delete', name], 'RW_TEARDOWN_FAILED', (stderr) => /No such file or directory/.test(stderr));
}

/** Runs `ip ARGS` (in a namespace via `ip -n NAME`) and returns its stdout. */
export function ip(args: readonly string[], options: NetnsOption = {}): string {
  const prefix = options.netns === undefined ? [] : ['-n', checkedName(options.netns)];
  return run('ip', [...prefix, ...args], 'RW_SETUP_FAILED');
}

/** What a word of an `ip -batch` line may be: batch lines are split at blanks, and quotes and `#` mean something there. */
const BATCH_WORD = /^[^\s"'\\#]+$/;

/**
 * Runs several ip commands in one process, `ip [-n NAME] -batch -`: a dozen commands
 * cost a dozen processes otherwise, more than the commands themselves. Stops at the
 * first that fails (with `force`, runs them all), RW_SETUP_FAILED quoting ip (which
 * names the line). Asynchronous, so other start-up work goes on meanwhile.
 */
export async function ipBatch(commands: readonly (readonly string[])[], options: NetnsOption & { readonly force?: boolean } = {}): Promise<void> {
  const prefix = [...(options.netns === undefined ? [] : ['-n', checkedName(options.netns)]), ...(options.force ? ['-force'] : [])];
  for (const word of commands.flat()) {
    if (!BATCH_WORD.test(word)) throw new RunwallError('RW_SETUP_FAILED', `'${word}' cannot be a word of an ip batch line`);
  }
  const lines = commands.map((command) => command.join(' '));
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', [...prefix, '-batch', '-'], { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      const command = `ip ${[...prefix, '-batch'].join(' ')} (${lines.join('; ')})`;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new RunwallError('RW_PLATFORM_MISSING', `ip is not installed (needed for '${command}')`, { command }));
        return;
      }
      reject(new RunwallError('RW_SETUP_FAILED', `'${command}' failed: ${stderr.trim() || error.message}`, { command, stderr }));
    });
    // ip exits early when a line fails; its input closing then is reported above.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(lines.join('\n') + '\n');
  });
}

/** Writes a sysctl, in a namespace via nsenter (the /proc/sys/net tree is per namespace of the writer). */
export function sysctl(key: string, value: string, options: NetnsOption = {}): void {
  if (!SYSCTL_KEY.test(key) || key.split(/[./]/).includes('..')) throw new RunwallError('RW_SETUP_FAILED', `'${key}' is not a sysctl key`);
  if (!/^[^\n]*$/.test(value)) throw new RunwallError('RW_SETUP_FAILED', `sysctl ${key}: the value must be one line`);
  // With slashes the segments are given; with dots each dot separates one (as sysctl(8) does).
  const file = `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
  if (options.netns === undefined) {
    try {
      writeFileSync(file, `${value}\n`);
    } catch (error) {
      throw new RunwallError('RW_SETUP_FAILED', `cannot set ${key}=${value}: ${(error as Error).message}`, { key, value }, { cause: error });
    }
    return;
  }
  run('nsenter', [`--net=${netnsPath(options.netns)}`, '--', 'tee', file], 'RW_SETUP_FAILED', undefined, `${value}\n`);
}

export function linkExists(name: string, options: NetnsOption = {}): boolean {
  const prefix = options.netns === undefined ? [] : ['-n', checkedName(options.netns)];
  let absent = false;
  run('ip', [...prefix, '-o', 'link', 'show', 'dev', name], 'RW_SETUP_FAILED', (stderr) => {
    absent = /does not exist/.test(stderr);
    return absent;
  });
  return !absent;
}

function checkedName(name: string): string {
  if (!NETNS_NAME.test(name)) throw new RunwallError('RW_SETUP_FAILED', `'${name}' is not a usable network namespace name (letters, digits, _ . -; at most 63)`);
  return name;
}

/**
 * Runs a tool and returns stdout. A failure the caller expects (`tolerated`
 * says so from stderr) returns ''; any other throws `code` quoting stderr.
 */
function run(tool: string, args: readonly string[], code: ErrorCode, tolerated?: (stderr: string) => boolean, input?: string): string {
  const result = spawnSync(tool, args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, input, stdio: ['pipe', 'pipe', 'pipe'] });
  const command = `${tool} ${args.join(' ')}`;
  if (result.error) {
    const errno = (result.error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') throw new RunwallError('RW_PLATFORM_MISSING', `${tool} is not installed (needed for '${command}')`, { command });
    throw new RunwallError(code, `'${command}' could not run: ${result.error.message}`, { command }, { cause: result.error });
  }
  if (result.status === 0) return result.stdout;
  const stderr = result.stderr.trim();
  if (tolerated?.(stderr)) return '';
  const how = result.status === null ? `was killed by ${result.signal ?? 'a signal'}` : `exited ${result.status}`;
  throw new RunwallError(code, `'${command}' ${how}: ${stderr || '(no message)'}`, { command, stderr });
}
