/**
 * Running the bench's commands: each in a network namespace (nsenter --net), timed,
 * bounded by a timeout that kills its whole process group, tracked so that an
 * interrupted bench leaves nothing running. Peak RSS and CPU time are sampled from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseProcMemory } from './proc-status.js';

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
  readonly timedOut: boolean;
  /** Highest VmHWM seen while it ran, when sampling was asked for (bytes). */
  readonly peakRssBytes?: number;
  /** CPU seconds used so far (user + system, all its threads) at each sample, when sampling was asked for. */
  readonly cpuSamples?: readonly CpuSample[];
}

export interface CpuSample {
  /** Wall-clock time of the reading (Date.now()). */
  readonly atMs: number;
  readonly cpuSeconds: number;
}

/** CPU seconds a sampled process used between two wall-clock times (the readings nearest inside them); undefined without two readings. */
export function cpuSecondsBetween(samples: readonly CpuSample[], fromMs: number, toMs: number): number | undefined {
  const first = samples.find((s) => s.atMs >= fromMs);
  const last = samples.filter((s) => s.atMs <= toMs).at(-1);
  return first && last && last.atMs > first.atMs ? last.cpuSeconds - first.cpuSeconds : undefined;
}

export interface StartOptions {
  /** The network namespace (name under /run/netns) to run in; the bench's own when absent. */
  readonly netns?: string;
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Sample /proc/PID/status and stat of the started process this often, for its peak RSS and CPU time. */
  readonly sampleRssEveryMs?: number;
}

export interface Started {
  readonly child: ChildProcess;
  readonly done: Promise<Finished>;
}

const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const live = new Set<ChildProcess>();

/** The environment for commands measured "as deployed": without the loader flags tsx gave the bench. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env['NODE_OPTIONS'];
  return env;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills everything the bench started that still runs (for exit and interrupt). */
export function killAllStarted(): void {
  for (const child of live) killGroup(child);
}

/** VmHWM of a running process, bytes; undefined once it has exited. */
export function peakRssOf(pid: number): number | undefined {
  try {
    return parseProcMemory(readFileSync(`/proc/${pid}/status`, 'utf8'))?.peakRssBytes;
  } catch {
    return undefined; // exited between samples
  }
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat; undefined once it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

export function start(argv: readonly string[], options: StartOptions): Started {
  const [command, ...args] = options.netns ? ['nsenter', `--net=/run/netns/${options.netns}`, '--', ...argv] : argv;
  if (command === undefined) throw new Error('start: empty argv');
  const began = performance.now();
  // nsenter --net execs the command in place: the pid is the measured process's own.
  const child = spawn(command, args, {
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  const done = new Promise<Finished>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let peak: number | undefined;
    const cpuSamples: CpuSample[] = [];
    const sample = (): void => {
      if (child.pid === undefined) return;
      const seen = peakRssOf(child.pid);
      if (seen !== undefined) peak = Math.max(peak ?? 0, seen);
      const cpuSeconds = cpuSecondsOf(child.pid);
      if (cpuSeconds !== undefined) cpuSamples.push({ atMs: Date.now(), cpuSeconds });
    };
    const sampler = options.sampleRssEveryMs !== undefined ? setInterval(sample, options.sampleRssEveryMs) : undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, options.timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (outBytes < MAX_OUTPUT_BYTES) out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errBytes < MAX_OUTPUT_BYTES) err.push(chunk);
      errBytes += chunk.length;
    });
    child.on('exit', () => clearInterval(sampler));
    child.on('error', (error) => {
      clearTimeout(timer);
      clearInterval(sampler);
      live.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - began;
      clearTimeout(timer);
      clearInterval(sampler);
      live.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        wallMs,
        timedOut,
        ...(peak !== undefined ? { peakRssBytes: peak } : {}),
        ...(options.sampleRssEveryMs !== undefined ? { cpuSamples } : {}),
      });
    });
  });
  return { child, done };
}

export function run(argv: readonly string[], options: StartOptions): Promise<Finished> {
  return start(argv, options).done;
}

/** A command for a message: paths cut to their last part, long argument lists cut short. */
export function describeCommand(argv: readonly string[]): string {
  const words = argv.slice(0, 6).map((word) => (word.includes('/') && !word.includes(' ') ? word.slice(word.lastIndexOf('/') + 1) || word : word));
  return words.join(' ') + (argv.length > 6 ? ' …' : '');
}

/** Like run, but a failure (non-zero status, timeout) is an error carrying the command's stderr. */
export async function runChecked(argv: readonly string[], options: StartOptions): Promise<Finished> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    const why = result.timedOut ? `timed out after ${options.timeoutMs} ms` : `exited ${result.code ?? result.signal}`;
    const output = (result.stderr || result.stdout).trim().replace(/\s*\n\s*/g, ' | ');
    throw new Error(`${describeCommand(argv)} ${why}: ${output.slice(-2000)}`);
  }
  return result;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
