/**
 * `runwall exec --workflow FILE --job ID`: runs the steps of one job, in
 * order, each as its own process tree in the one sandbox of the run, and
 * emits a `step` event at each boundary. What runs and how is decided by the
 * pure plan (policy/workflow-run.ts); this file only spawns, waits, reads the
 * step's files and tells the terminal.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cancelJob,
  completeStep,
  jobExitCode,
  prepareStep,
  skipStep,
  startJob,
  type JobPlan,
  type JobState,
  type LocalRunner,
  type RunAction,
  type StepExit,
  type StepFiles,
  type StepRecord,
} from '../../policy/index.js';
import { findOnPath } from '../exec/preflight.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import type { ExecSandbox } from '../sandbox/exec-sandbox.js';
import { JobNamespace } from '../sandbox/job-namespace.js';

export interface WorkflowRunOptions {
  readonly sandbox: ExecSandbox;
  readonly plan: JobPlan;
  readonly pipeline: EventPipeline;
  /** `$GITHUB_WORKSPACE`: the directory steps start in. */
  readonly workspace: string;
  /** The environment every step inherits. */
  readonly env: NodeJS.ProcessEnv;
  readonly droppedCapabilities: readonly string[];
  /** Where progress lines go (runwall's stderr). */
  readonly log?: (line: string) => void;
}

export interface WorkflowOutcome {
  readonly exitCode: number;
  readonly records: readonly StepRecord[];
}

/** How a cancelled or timed-out step is stopped, as the Actions runner does: SIGINT, then SIGTERM, then SIGKILL. */
const STOP_SEQUENCE: readonly { readonly signal: NodeJS.Signals; readonly waitMs: number }[] = [
  { signal: 'SIGINT', waitMs: 7_500 },
  { signal: 'SIGTERM', waitMs: 2_500 },
  { signal: 'SIGKILL', waitMs: 2_000 },
];
const CANCEL_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const ARCH: Readonly<Record<string, string>> = { x64: 'X64', arm64: 'ARM64', ia32: 'X86', arm: 'ARM' };

function now(): string {
  return new Date().toISOString();
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) out[name] = value;
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One running step: its process, and how to stop it. */
class RunningStep {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #ns: JobNamespace;
  #stopping: Promise<void> | null = null;

  constructor(ns: JobNamespace, child: ChildProcess) {
    this.#ns = ns;
    this.child = child;
    this.done = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: 250, signal: null }));
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Signals the step's init (it forwards to the step's command); escalates until the step is gone. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const { signal, waitMs } of STOP_SEQUENCE) {
        if (this.exited) return;
        const init = this.#ns.stepInit(this.child);
        for (const pid of [init, ...(signal === 'SIGKILL' ? [this.child.pid ?? null] : [])]) {
          if (pid === null || pid === undefined) continue;
          try {
            process.kill(pid, signal);
          } catch {
            // Already gone.
          }
        }
        await Promise.race([this.done, sleep(waitMs)]);
      }
    })();
    return this.#stopping;
  }
}

/** Replaces `{0}` in each argument with the script's path, as the runner formats shell arguments. */
function commandLine(action: RunAction, script: string): string[] {
  const argv = action.argv.map((arg) => arg.split('{0}').join(script));
  return action.argv.some((arg) => arg.includes('{0}')) ? argv : [...argv, script];
}

export async function runWorkflowJob(options: WorkflowRunOptions): Promise<WorkflowOutcome> {
  const { plan, pipeline } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const temp = mkdtempSync(join(tmpdir(), `runwall-${options.sandbox.plan.runId}-`));
  chmodSync(temp, 0o700);
  const commandsDir = join(temp, '_runner_file_commands');
  mkdirSync(commandsDir);
  const runner: LocalRunner = {
    workspace: options.workspace,
    temp,
    arch: ARCH[arch()] ?? arch().toUpperCase(),
    bashAvailable: findOnPath('bash', options.env['PATH'] ?? undefined) !== null,
    baseEnv: stringEnv(options.env),
  };
  for (const note of plan.notes) log(`runwall: note: ${note}`);

  const started = startJob(plan, runner);
  let state: JobState = started.state;
  let current: RunningStep | null = null;
  let cancelled = false;
  const cancel = (why: string): void => {
    if (!cancelled) log(`runwall: ${why}: cancelling the job (steps with if: always() or cancelled() still run)`);
    else if (current) log(`runwall: ${why} again: stopping the current step now`);
    cancelled = true;
    state = cancelJob(state);
    void current?.stop();
  };
  const onSignal = (signal: NodeJS.Signals): void => cancel(signal);
  for (const signal of CANCEL_SIGNALS) process.on(signal, onSignal);
  const jobTimer = started.timeoutMs === null ? null : setTimeout(() => cancel(`the job ran longer than its timeout-minutes`), started.timeoutMs);

  let ns: JobNamespace | null = null;
  try {
    ns = await JobNamespace.start(options.sandbox, {
      readyDir: temp,
      cwd: options.workspace,
      env: options.env,
      droppedCapabilities: options.droppedCapabilities,
    });
    const total = plan.steps.length;
    for (let index = 0; index < total; index += 1) {
      const files: StepFiles = {
        env: join(commandsDir, `set_env_${index + 1}`),
        path: join(commandsDir, `add_path_${index + 1}`),
        output: join(commandsDir, `set_output_${index + 1}`),
        summary: join(commandsDir, `step_summary_${index + 1}`),
        state: join(commandsDir, `save_state_${index + 1}`),
      };
      const action = prepareStep(plan, state, index, runner, files);
      if (action.kind === 'skip') {
        const skipped = skipStep(state, action);
        state = skipped.state;
        log(`runwall: step ${index + 1}/${total} "${action.name}": skipped, ${action.reason}`);
        pipeline.emit({ kind: 'step', time: now(), action: 'end', id: action.step.id, name: action.name, source: 'workflow', outcome: 'skipped', conclusion: 'skipped', reason: action.reason });
        continue;
      }
      for (const file of Object.values(files)) writeFileSync(file, '', { mode: 0o666 });
      const scriptPath = join(temp, `${action.step.id}${action.extension}`);
      writeFileSync(scriptPath, action.script, { mode: 0o755 });
      const argv = commandLine(action, scriptPath);
      log(`runwall: step ${index + 1}/${total} "${action.name}" (${argv[0] ?? ''})`);
      for (const note of action.notes) log(`runwall:   note: ${note}`);

      const step = new RunningStep(ns, ns.spawnStep({ argv, cwd: action.workingDirectory, env: action.env, droppedCapabilities: options.droppedCapabilities }));
      current = step;
      // The begin event names the step's root process before any of its processes can produce events.
      pipeline.emit({
        kind: 'step',
        time: now(),
        action: 'begin',
        id: action.step.id,
        name: action.name,
        source: 'workflow',
        ...(step.child.pid !== undefined ? { process: { pid: step.child.pid, argv } } : {}),
      });
      let timedOut = false;
      const stepTimer =
        action.timeoutMs === null
          ? null
          : setTimeout(() => {
              timedOut = true;
              log(`runwall: step "${action.name}" ran longer than its timeout-minutes: stopping it`);
              void step.stop();
            }, action.timeoutMs);
      const { code, signal } = await step.done;
      if (stepTimer) clearTimeout(stepTimer);
      current = null;
      const exit: StepExit = {
        exitCode: code ?? (signal ? null : 1),
        cancelled: cancelled && !timedOut && code !== 0,
        timedOut,
        files: { env: readText(files.env), path: readText(files.path), output: readText(files.output) },
      };
      const completed = completeStep(state, action, exit);
      state = cancelled ? cancelJob(completed.state) : completed.state;
      const record = completed.record;
      log(
        `runwall: step ${index + 1}/${total} "${action.name}": ${record.outcome}${record.conclusion !== record.outcome ? ` (concluded ${record.conclusion})` : ''}${record.reason ? `, ${record.reason}` : ''}`,
      );
      pipeline.emit({
        kind: 'step',
        time: now(),
        action: 'end',
        id: action.step.id,
        name: action.name,
        source: 'workflow',
        outcome: record.outcome,
        conclusion: record.conclusion,
        exitCode: record.exitCode,
        ...(record.reason !== null ? { reason: record.reason } : {}),
        ...(record.notes.length > 0 ? { notes: [...record.notes] } : {}),
      });
    }
  } finally {
    if (jobTimer) clearTimeout(jobTimer);
    for (const signal of CANCEL_SIGNALS) process.off(signal, onSignal);
    await current?.stop();
    await ns?.stop();
    rmSync(temp, { recursive: true, force: true });
  }
  const exitCode = jobExitCode(state);
  log(`runwall: job "${plan.job.name ?? plan.job.id}": ${state.status}`);
  return { exitCode, records: state.records };
}
