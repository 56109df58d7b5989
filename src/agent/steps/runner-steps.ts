/**
 * Steps on a GitHub Actions runner (agent mode): the runner worker
 * (`Runner.Worker`) starts each step as a child process, so a new child of
 * the worker is a new step and its exit is the step's end. The step's name
 * comes from the worker's own log (`<runner>/_diag/Worker_*.log`, see
 * worker-log.ts), read from where the last read stopped; without it, from
 * the step's script (`Run <first line>`, as GitHub shows an unnamed step) or
 * its command line.
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import type { ProcessLike, ProcessLookup, StepTracker } from './step-tracker.js';
import { latestWorkerLog, parseWorkerLog } from './worker-log.js';

export const RUNNER_WORKER = 'Runner.Worker';
/** Bytes of the worker log read at most per step start (the log grows by a few KB per step). */
const MAX_READ_BYTES = 4 * 1024 * 1024;
const MAX_NAME = 200;

/** Reads new step lines from one runner's worker log. */
class WorkerLog {
  readonly #diagDir: string;
  #file: string | null = null;
  #offset = 0;
  #partial = '';
  #pending: string[] = [];

  constructor(diagDir: string) {
    this.#diagDir = diagDir;
  }

  /** The name of the step the worker began last, if its log named one since the previous call. */
  takeLatest(): string | null {
    this.#read();
    const name = this.#pending.at(-1) ?? null;
    this.#pending = [];
    return name;
  }

  #read(): void {
    let names: string[];
    try {
      names = readdirSync(this.#diagDir);
    } catch {
      return;
    }
    const latest = latestWorkerLog(names);
    if (latest === undefined) return;
    const path = join(this.#diagDir, latest);
    if (path !== this.#file) {
      // A new page or a new job's log: read it from its start.
      this.#file = path;
      this.#offset = 0;
      this.#partial = '';
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return;
    }
    try {
      const size = statSync(path).size;
      if (size < this.#offset) this.#offset = 0;
      const length = Math.min(size - this.#offset, MAX_READ_BYTES);
      if (length <= 0) return;
      const buffer = Buffer.alloc(length);
      const read = readSync(fd, buffer, 0, length, this.#offset);
      this.#offset += read;
      const text = this.#partial + buffer.subarray(0, read).toString('utf8');
      const cut = text.lastIndexOf('\n');
      this.#partial = cut < 0 ? text : text.slice(cut + 1);
      for (const step of parseWorkerLog(cut < 0 ? '' : text.slice(0, cut))) this.#pending.push(step.name);
    } finally {
      closeSync(fd);
    }
  }
}

function exeOf(processes: ProcessLookup, pid: number): string | null {
  const known = processes.get(pid)?.exe;
  if (known) return known;
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** `Run <first line>` of a step's script file, as GitHub names an unnamed `run:` step. */
function nameFromScript(info: ProcessLike): string | null {
  const script = info.argv.slice(1).find((arg) => /\/_temp\/[^/]+\.(sh|py|ps1)$/.test(arg));
  if (script === undefined) return null;
  try {
    const first = readFileSync(script, 'utf8').split('\n').find((line) => line.trim() !== '');
    return first === undefined ? null : `Run ${first.trim()}`;
  } catch {
    return null;
  }
}

function nameFromCommand(info: ProcessLike): string {
  const command = [info.exe ? basename(info.exe) : (info.argv[0] ?? `pid ${info.pid}`), ...info.argv.slice(1)].join(' ');
  return command.length > MAX_NAME ? `${command.slice(0, MAX_NAME - 1)}…` : command;
}

/**
 * Watches the process table for the runner worker's children and emits their
 * step events. Returns a function that stops watching.
 */
export function watchRunnerSteps(processes: ProcessLookup, pipeline: EventPipeline, tracker: StepTracker): () => void {
  const workers = new Map<number, WorkerLog | null>();
  const runnerSteps = new Map<number, string>();

  const workerLog = (pid: number): WorkerLog | null | undefined => {
    if (workers.has(pid)) return workers.get(pid);
    const exe = exeOf(processes, pid);
    // Remember non-workers too (null), so each parent is looked at once.
    const log = exe !== null && basename(exe) === RUNNER_WORKER ? new WorkerLog(join(dirname(dirname(exe)), '_diag')) : null;
    workers.set(pid, log);
    return log;
  };

  const offExec = processes.onExec((info) => {
    if (runnerSteps.has(info.pid) || tracker.isRoot(info.pid)) return;
    const log = workerLog(info.ppid);
    if (log === null || log === undefined) return;
    const name = log.takeLatest() ?? nameFromScript(info) ?? nameFromCommand(info);
    const id = tracker.nextId();
    runnerSteps.set(info.pid, id);
    pipeline.emit({
      kind: 'step',
      time: new Date().toISOString(),
      action: 'begin',
      id,
      name,
      source: 'runner',
      process: { pid: info.pid, ppid: info.ppid, ...(info.exe ? { exe: info.exe } : {}), argv: [...info.argv] },
    });
  });

  const offExit = processes.onExit((info) => {
    workers.delete(info.pid);
    const id = runnerSteps.get(info.pid);
    if (id === undefined) return;
    runnerSteps.delete(info.pid);
    const name = tracker.openSteps().find((step) => step.id === id)?.name ?? id;
    const outcome = info.exitCode === 0 ? 'success' : 'failure';
    pipeline.emit({
      kind: 'step',
      time: info.endTime ?? new Date().toISOString(),
      action: 'end',
      id,
      name,
      source: 'runner',
      outcome,
      exitCode: info.exitCode,
      ...(outcome === 'failure' ? { reason: info.exitCode === null ? 'its process was killed' : `its process exited with status ${info.exitCode}` } : {}),
    });
  });

  return () => {
    offExec();
    offExit();
  };
}
