/**
 * Running a job plan, as decisions: for each step, whether it runs (its `if:`
 * under the job's status so far), with which script, shell, environment and
 * working directory; and after it ran, its outcome, its conclusion
 * (`continue-on-error`), what it added to the environment, PATH and outputs,
 * and the job's new status. Pure: agent/workflow does the spawning.
 *
 * What needs something this machine does not have (`github.event`, `matrix`,
 * `needs`, `hashFiles`) skips the step with that reason instead of guessing.
 */
import { posix } from 'node:path';
import { deepFreeze } from './freeze.js';
import type { JobPlan, PlannedStep } from './workflow.js';
import {
  evaluateCondition,
  evaluateTemplateValue,
  ExpressionUnavailable,
  isTruthy,
  renderTemplate,
  toNumber,
  type ContextValue,
  type EvaluationContext,
  type Expression,
  type ExpressionValue,
  type Template,
} from './workflow-expression.js';
import { parseFileCommands, parsePathFile } from './workflow-file-commands.js';

export type JobStatus = 'success' | 'failure' | 'cancelled';
export type StepOutcome = 'success' | 'failure' | 'cancelled' | 'skipped';

/** What the machine running the job gives it. */
export interface LocalRunner {
  /** `$GITHUB_WORKSPACE`: absolute; relative working directories start here. */
  readonly workspace: string;
  /** `$RUNNER_TEMP`: absolute. */
  readonly temp: string;
  readonly arch: string;
  readonly bashAvailable: boolean;
  /** The environment every step inherits (runwall's own). */
  readonly baseEnv: Readonly<Record<string, string>>;
}

/** The files of one step through which it sets env, PATH, outputs and its summary. */
export interface StepFiles {
  readonly env: string;
  readonly path: string;
  readonly output: string;
  readonly summary: string;
  readonly state: string;
}

export interface StepRecord {
  readonly id: string;
  readonly name: string;
  readonly outcome: StepOutcome;
  /** The outcome after `continue-on-error`: a tolerated failure concludes as success. */
  readonly conclusion: StepOutcome;
  readonly exitCode: number | null;
  readonly reason: string | null;
  readonly notes: readonly string[];
}

interface StepContextEntry {
  readonly outputs: Readonly<Record<string, string>>;
  readonly outcome: StepOutcome;
  readonly conclusion: StepOutcome;
}

export interface JobState {
  readonly status: JobStatus;
  /** Exit status of the first step that failed the job. */
  readonly failedExitCode: number | null;
  /** Why every step is skipped (the job's own `if:`), or null. */
  readonly jobSkipped: string | null;
  readonly steps: Readonly<Record<string, StepContextEntry>>;
  /** `$GITHUB_ENV` entries of the steps so far, in order (a later one wins). */
  readonly addedEnv: readonly (readonly [string, string])[];
  /** `$GITHUB_PATH` entries so far, in order (the last one goes first in PATH). */
  readonly addedPath: readonly string[];
  readonly records: readonly StepRecord[];
}

export type StepAction =
  | { readonly kind: 'skip'; readonly step: PlannedStep; readonly name: string; readonly reason: string }
  | {
      readonly kind: 'run';
      readonly step: PlannedStep;
      readonly name: string;
      /** The script file's content. */
      readonly script: string;
      /** The command, with `{0}` where the script file's path goes. */
      readonly argv: readonly string[];
      /** The script file's extension (`.sh`, `.py`…) or ''. */
      readonly extension: string;
      readonly env: Readonly<Record<string, string>>;
      readonly workingDirectory: string;
      readonly timeoutMs: number | null;
      readonly continueOnError: boolean;
      readonly notes: readonly string[];
    };

export type RunAction = Extract<StepAction, { kind: 'run' }>;

export interface StepExit {
  readonly exitCode: number | null;
  /** The job was cancelled while the step ran. */
  readonly cancelled: boolean;
  readonly timedOut: boolean;
  /** What the step left in its files (empty text when it wrote nothing). */
  readonly files: { readonly env: string; readonly path: string; readonly output: string };
}

/** Names `$GITHUB_ENV` may not set, as on GitHub (they would change how later steps run the runner's own tools). */
const PROTECTED_ENV = new Set(['NODE_OPTIONS']);

/** How each shell runs a script, as the Actions runner does on Linux. */
export function shellCommand(shell: string | null, bashAvailable: boolean): { argv: string[]; extension: string; wrap: (script: string) => string } | { unsupported: string } {
  const plain = (script: string): string => script;
  if (shell === null) {
    return bashAvailable ? { argv: ['bash', '-e', '{0}'], extension: '.sh', wrap: plain } : { argv: ['sh', '-e', '{0}'], extension: '.sh', wrap: plain };
  }
  switch (shell.trim()) {
    case 'bash':
      return { argv: ['bash', '--noprofile', '--norc', '-e', '-o', 'pipefail', '{0}'], extension: '.sh', wrap: plain };
    case 'sh':
      return { argv: ['sh', '-e', '{0}'], extension: '.sh', wrap: plain };
    case 'python':
      return { argv: ['python', '{0}'], extension: '.py', wrap: plain };
    case 'pwsh':
      return {
        argv: ['pwsh', '-command', ". '{0}'"],
        extension: '.ps1',
        wrap: (script) => `$ErrorActionPreference = 'stop'\n${script}\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }`,
      };
    case 'powershell':
    case 'cmd':
      return { unsupported: `shell '${shell.trim()}' exists only on Windows runners` };
    default: {
      // `command [options] {0} [more options]`: the script's path goes where {0} is.
      const argv = shell.trim().split(/\s+/);
      return { argv, extension: '', wrap: plain };
    }
  }
}

function stepContextValue(steps: JobState['steps']): ExpressionValue {
  const out: Record<string, ExpressionValue> = {};
  for (const [id, entry] of Object.entries(steps)) out[id] = { outputs: { ...entry.outputs }, outcome: entry.outcome, conclusion: entry.conclusion };
  return out;
}

function evaluationContext(plan: JobPlan, state: JobState, runner: LocalRunner, env: Readonly<Record<string, string>>, action: string): EvaluationContext {
  const unavailable = (why: string): ContextValue => ({ unavailable: why });
  const contexts: Record<string, ContextValue> = {
    github: {
      partial: true,
      name: 'github',
      known: { workspace: runner.workspace, job: plan.job.id, workflow: plan.workflow.name ?? plan.workflow.path, action, actions: 'true', path: '', env: '' },
    },
    env: { ...env },
    // Unset secrets and variables read as empty on GitHub too; the step's notes say which were read.
    secrets: {},
    vars: {},
    job: { partial: true, name: 'job', known: { status: state.status } },
    jobs: unavailable('exists only in reusable workflows'),
    steps: stepContextValue(state.steps),
    runner: {
      partial: true,
      name: 'runner',
      known: { os: 'Linux', arch: runner.arch, temp: runner.temp, name: 'runwall', environment: 'self-hosted', debug: '' },
    },
    strategy: plan.job.hasMatrix ? unavailable('comes from the matrix, which runwall exec does not expand') : { 'fail-fast': true, 'job-index': 0, 'job-total': 1, 'max-parallel': 1 },
    matrix: plan.job.hasMatrix ? unavailable('comes from the matrix, which runwall exec does not expand') : {},
    needs: plan.job.hasNeeds ? unavailable('holds the results of other jobs, which runwall exec does not run') : {},
    inputs: unavailable('holds inputs of a dispatch or call, which runwall exec is not given'),
  };
  return { status: state.status, contexts };
}

/** Text of `secrets.X` / `vars.X` an expression reads, for the step's notes. */
function secretReferences(expression: Expression, out: Set<string>): void {
  switch (expression.type) {
    case 'member':
      if (expression.object.type === 'context' && (expression.object.name === 'secrets' || expression.object.name === 'vars')) {
        out.add(`${expression.object.name}.${expression.property}`);
      }
      secretReferences(expression.object, out);
      break;
    case 'index':
      if (expression.object.type === 'context' && (expression.object.name === 'secrets' || expression.object.name === 'vars') && expression.index.type === 'literal') {
        out.add(`${expression.object.name}.${String(expression.index.value)}`);
      }
      secretReferences(expression.object, out);
      secretReferences(expression.index, out);
      break;
    case 'filter':
      secretReferences(expression.object, out);
      break;
    case 'not':
      secretReferences(expression.operand, out);
      break;
    case 'binary':
      secretReferences(expression.left, out);
      secretReferences(expression.right, out);
      break;
    case 'call':
      for (const arg of expression.args) secretReferences(arg, out);
      break;
    case 'text':
      for (const part of expression.parts) if (typeof part !== 'string') secretReferences(part, out);
      break;
    default:
      break;
  }
}

function templatesOf(step: PlannedStep): Template[] {
  return [step.name, ...(step.run ? [step.run] : []), ...(step.workingDirectory ? [step.workingDirectory] : []), ...step.env.map(([, value]) => value)];
}

function secretNotes(step: PlannedStep): string[] {
  const found = new Set<string>();
  secretReferences(step.condition, found);
  for (const template of templatesOf(step)) for (const part of template) if (typeof part !== 'string') secretReferences(part, found);
  return [...found].sort().map((reference) => `${reference} is empty: runwall exec does not have the repository's ${reference.startsWith('secrets.') ? 'secrets' : 'variables'}`);
}

function positiveMinutes(value: ExpressionValue): number | null {
  const minutes = toNumber(value);
  return Number.isFinite(minutes) && minutes > 0 ? minutes : null;
}

/** The job's status before its first step; evaluates the job's `if:`. */
export function startJob(plan: JobPlan, runner: LocalRunner): { state: JobState; timeoutMs: number | null } {
  let state: JobState = { status: 'success', failedExitCode: null, jobSkipped: null, steps: {}, addedEnv: [], addedPath: [], records: [] };
  const context = evaluationContext(plan, state, runner, {}, '');
  let timeoutMs: number | null = null;
  try {
    if (plan.job.condition !== null && !evaluateCondition(plan.job.condition, context)) {
      state = { ...state, jobSkipped: `the job's condition '${plan.job.conditionText ?? ''}' is false` };
    }
    const minutes = plan.job.timeoutMinutes === null ? null : typeof plan.job.timeoutMinutes === 'number' ? plan.job.timeoutMinutes : positiveMinutes(evaluateTemplateValue(plan.job.timeoutMinutes, context));
    timeoutMs = minutes === null ? null : Math.round(minutes * 60_000);
  } catch (error: unknown) {
    if (!(error instanceof ExpressionUnavailable)) throw error;
    state = { ...state, jobSkipped: `the job's condition reads ${error.message}` };
  }
  return { state: deepFreeze(state), timeoutMs };
}

/** The job was cancelled (a signal, the job's timeout): `cancelled()` is now true, `success()` false. */
export function cancelJob(state: JobState): JobState {
  return state.status === 'cancelled' ? state : deepFreeze({ ...state, status: 'cancelled' });
}

/** Whether step `index` runs, and how. */
export function prepareStep(plan: JobPlan, state: JobState, index: number, runner: LocalRunner, files: StepFiles): StepAction {
  const step = plan.steps[index];
  if (step === undefined) throw new RangeError(`the plan has no step ${index}`);
  let name = step.nameText;
  const skip = (reason: string): StepAction => deepFreeze({ kind: 'skip', step, name, reason });
  if (state.jobSkipped !== null) return skip(state.jobSkipped);
  try {
    // The env context: workflow, job, what earlier steps added, then the step's own; each level sees the ones before.
    const env: Record<string, string> = {};
    const context = (): EvaluationContext => evaluationContext(plan, state, runner, env, step.id);
    for (const [key, value] of plan.env.workflow) env[key] = renderTemplate(value, context());
    for (const [key, value] of plan.env.job) env[key] = renderTemplate(value, context());
    for (const [key, value] of state.addedEnv) env[key] = value;
    for (const [key, value] of step.env) env[key] = renderTemplate(value, context());
    try {
      name = renderTemplate(step.name, context());
    } catch {
      // A name that cannot be evaluated is shown as written.
    }
    if (!evaluateCondition(step.condition, context())) {
      return skip(`its condition '${step.conditionText}' is false (job status: ${state.status})`);
    }
    if (step.cannotRun !== null || step.run === null) return skip(step.cannotRun ?? 'it has no run: script');
    const shell = shellCommand(step.shell, runner.bashAvailable);
    if ('unsupported' in shell) return skip(shell.unsupported);
    const script = shell.wrap(renderTemplate(step.run, context()));
    const directory = step.workingDirectory === null ? '.' : renderTemplate(step.workingDirectory, context());
    const continueOnError = typeof step.continueOnError === 'boolean' ? step.continueOnError : isTruthy(evaluateTemplateValue(step.continueOnError, context()));
    const minutes =
      step.timeoutMinutes === null ? null : typeof step.timeoutMinutes === 'number' ? step.timeoutMinutes : positiveMinutes(evaluateTemplateValue(step.timeoutMinutes, context()));
    const processEnv: Record<string, string> = { ...runner.baseEnv, CI: 'true', GITHUB_ACTIONS: 'true', ...env };
    Object.assign(processEnv, {
      GITHUB_WORKSPACE: runner.workspace,
      GITHUB_JOB: plan.job.id,
      GITHUB_WORKFLOW: plan.workflow.name ?? plan.workflow.path,
      GITHUB_ACTION: step.id,
      GITHUB_ENV: files.env,
      GITHUB_PATH: files.path,
      GITHUB_OUTPUT: files.output,
      GITHUB_STEP_SUMMARY: files.summary,
      GITHUB_STATE: files.state,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: runner.arch,
      RUNNER_TEMP: runner.temp,
      RUNNER_NAME: 'runwall',
      RUNNER_ENVIRONMENT: 'self-hosted',
    });
    if (state.addedPath.length > 0) {
      const front = [...state.addedPath].reverse().join(':');
      processEnv['PATH'] = processEnv['PATH'] ? `${front}:${processEnv['PATH']}` : front;
    }
    return deepFreeze({
      kind: 'run',
      step,
      name,
      script,
      argv: shell.argv,
      extension: shell.extension,
      env: processEnv,
      workingDirectory: posix.normalize(posix.isAbsolute(directory) ? directory : posix.join(runner.workspace, directory)),
      timeoutMs: minutes === null ? null : Math.round(minutes * 60_000),
      continueOnError,
      notes: secretNotes(step),
    });
  } catch (error: unknown) {
    if (error instanceof ExpressionUnavailable) return skip(`it reads ${error.message}`);
    throw error;
  }
}

function withRecord(state: JobState, record: StepRecord, step: PlannedStep, outputs: Readonly<Record<string, string>>): JobState {
  return {
    ...state,
    steps: step.workflowId === null ? state.steps : { ...state.steps, [step.workflowId]: { outputs, outcome: record.outcome, conclusion: record.conclusion } },
    records: [...state.records, record],
  };
}

/** Records a skipped step. */
export function skipStep(state: JobState, action: Extract<StepAction, { kind: 'skip' }>): { state: JobState; record: StepRecord } {
  const record: StepRecord = { id: action.step.id, name: action.name, outcome: 'skipped', conclusion: 'skipped', exitCode: null, reason: action.reason, notes: [] };
  return { state: deepFreeze(withRecord(state, record, action.step, {})), record: deepFreeze(record) };
}

/** The outcome of a step that ran, and the job's state after it. */
export function completeStep(state: JobState, action: RunAction, exit: StepExit): { state: JobState; record: StepRecord } {
  const notes = [...action.notes];
  const env = parseFileCommands(exit.files.env, 'GITHUB_ENV');
  const output = parseFileCommands(exit.files.output, 'GITHUB_OUTPUT');
  const fileErrors = [...env.errors, ...output.errors];
  const addedEnv = [...state.addedEnv];
  for (const [name, value] of env.entries) {
    if (PROTECTED_ENV.has(name.toUpperCase())) notes.push(`GITHUB_ENV may not set ${name}; ignored`);
    else addedEnv.push([name, value]);
  }
  const outputs: Record<string, string> = {};
  for (const [name, value] of output.entries) outputs[name] = value;

  let outcome: StepOutcome;
  let reason: string | null = null;
  if (exit.cancelled) {
    outcome = 'cancelled';
    reason = 'the job was cancelled';
  } else if (exit.timedOut) {
    outcome = 'failure';
    reason = `it ran longer than its timeout of ${Math.round((action.timeoutMs ?? 0) / 600) / 100} minutes`;
  } else if (exit.exitCode !== 0) {
    outcome = 'failure';
    reason = exit.exitCode === null ? 'it was killed' : `it exited with status ${exit.exitCode}`;
  } else if (fileErrors.length > 0) {
    outcome = 'failure';
    reason = fileErrors[0] ?? 'a file command was malformed';
  } else {
    outcome = 'success';
  }
  notes.push(...fileErrors.slice(outcome === 'failure' && reason === fileErrors[0] ? 1 : 0));
  const tolerated = outcome === 'failure' && action.continueOnError;
  if (tolerated) notes.push('continue-on-error: the failure does not fail the job');
  const conclusion: StepOutcome = tolerated ? 'success' : outcome;
  const record: StepRecord = { id: action.step.id, name: action.name, outcome, conclusion, exitCode: exit.exitCode, reason, notes };

  let next: JobState = { ...withRecord(state, record, action.step, outputs), addedEnv, addedPath: [...state.addedPath, ...parsePathFile(exit.files.path)] };
  if (conclusion === 'cancelled') next = { ...next, status: 'cancelled' };
  else if (conclusion === 'failure' && next.status === 'success') {
    next = { ...next, status: 'failure', failedExitCode: exit.exitCode !== null && exit.exitCode > 0 && exit.exitCode < 250 ? exit.exitCode : 1 };
  }
  return { state: deepFreeze(next), record: deepFreeze(record) };
}

/** The exit status of the job: 0, the first failing step's status, or 130 when cancelled. */
export function jobExitCode(state: JobState): number {
  if (state.status === 'cancelled') return 130;
  if (state.status === 'failure') return state.failedExitCode ?? 1;
  return 0;
}
