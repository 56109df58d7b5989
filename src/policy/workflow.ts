/**
 * A GitHub Actions workflow file, read strictly, and the plan of one of its
 * jobs for `runwall exec --workflow FILE --job ID`: which steps run, with which
 * shell, environment, working directory and condition, and which are skipped
 * and why. Pure: the plan is data; agent/workflow runs it.
 *
 * Unknown keys, wrong types, duplicate step ids and unparsable expressions are
 * RW_WORKFLOW_INVALID naming the file and line, before anything is set up.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Pair } from 'yaml';
import { RunwallError } from '../protocol/index.js';
import { lineOf } from './block-list.js';
import { deepFreeze } from './freeze.js';
import { describeValue } from './mode.js';
import { ExpressionSyntaxError, parseCondition, parseTemplate, type Expression, type Template } from './workflow-expression.js';

export interface RunDefaults {
  readonly shell: string | null;
  readonly workingDirectory: string | null;
}

export type EnvEntries = readonly (readonly [string, string])[];

export interface WorkflowStep {
  /** Position in the job, from 0. */
  readonly index: number;
  readonly line: number | null;
  readonly id: string | null;
  readonly name: string | null;
  readonly run: string | null;
  readonly uses: string | null;
  readonly shell: string | null;
  readonly workingDirectory: string | null;
  readonly env: EnvEntries;
  readonly if: string | null;
  readonly continueOnError: boolean | string;
  readonly timeoutMinutes: number | string | null;
}

export interface WorkflowJob {
  readonly id: string;
  readonly line: number | null;
  readonly name: string | null;
  readonly if: string | null;
  readonly env: EnvEntries;
  readonly defaults: RunDefaults;
  readonly steps: readonly WorkflowStep[];
  /** Image of `container:`; its steps would run inside it. */
  readonly container: string | null;
  readonly services: readonly string[];
  /** A call of a reusable workflow (`jobs.<id>.uses`): it has no steps of its own. */
  readonly uses: string | null;
  readonly timeoutMinutes: number | string | null;
  readonly hasMatrix: boolean;
  readonly needs: readonly string[];
}

export interface Workflow {
  readonly path: string;
  readonly name: string | null;
  readonly env: EnvEntries;
  readonly defaults: RunDefaults;
  readonly jobs: readonly WorkflowJob[];
}

const WORKFLOW_KEYS = ['name', 'run-name', 'on', 'permissions', 'env', 'defaults', 'concurrency', 'jobs'] as const;
const JOB_KEYS = [
  'name',
  'permissions',
  'needs',
  'if',
  'runs-on',
  'snapshot',
  'environment',
  'concurrency',
  'outputs',
  'env',
  'defaults',
  'steps',
  'timeout-minutes',
  'strategy',
  'continue-on-error',
  'container',
  'services',
  'uses',
  'with',
  'secrets',
] as const;
const STEP_KEYS = ['id', 'if', 'name', 'uses', 'run', 'working-directory', 'shell', 'with', 'env', 'continue-on-error', 'timeout-minutes'] as const;
/** Step ids as GitHub accepts them. */
const STEP_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const MAX_STEPS = 1000;

// ---------------------------------------------------------------- reading YAML

class Reader {
  readonly path: string;
  readonly counter: LineCounter;

  constructor(path: string, counter: LineCounter) {
    this.path = path;
    this.counter = counter;
  }

  at(node: unknown): string {
    const line = lineOf(this.counter, node);
    return line === undefined ? this.path : `${this.path}:${line}`;
  }

  line(node: unknown): number | null {
    return lineOf(this.counter, node) ?? null;
  }

  error(node: unknown, message: string, details: Record<string, unknown> = {}): RunwallError {
    const line = lineOf(this.counter, node);
    return new RunwallError('RW_WORKFLOW_INVALID', `${this.at(node)}: ${message}`, { path: this.path, ...(line !== undefined ? { line } : {}), ...details });
  }

  /** The pairs of a mapping, each key checked against `known`. */
  pairs(node: unknown, what: string, known: readonly string[] | null): { key: string; pair: Pair; value: unknown }[] {
    if (!isMap(node)) throw this.error(node, `${what} must be a mapping, not ${describeNode(node)}`);
    return node.items.map((pair) => {
      const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key !== 'string') throw this.error(pair.key, `${what} has a key that is not text (${describeValue(key)})`);
      if (known !== null && !known.includes(key)) {
        throw this.error(pair.key, `unknown key '${key}' in ${what}; known keys: ${known.join(', ')}`, { key });
      }
      return { key, pair, value: pair.value };
    });
  }

  text(node: unknown, what: string): string {
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number' || typeof node.value === 'boolean')) return String(node.value);
    throw this.error(node, `${what} must be text, not ${describeNode(node)}`);
  }

  /** A value that is a boolean, a number, or an expression kept as text. */
  scalar(node: unknown, what: string): string | number | boolean {
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number' || typeof node.value === 'boolean')) return node.value;
    throw this.error(node, `${what} must be a single value, not ${describeNode(node)}`);
  }

  env(node: unknown, what: string): EnvEntries {
    if (node === null || node === undefined || (isScalar(node) && node.value === null)) return [];
    const entries: (readonly [string, string])[] = [];
    for (const { key, value } of this.pairs(node, what, null)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw this.error(value ?? node, `${what}: '${key}' is not a valid environment variable name`);
      // YAML numbers and booleans become their text, null becomes empty, as the runner does.
      if (isScalar(value) && value.value === null) entries.push([key, '']);
      else entries.push([key, this.text(value, `${what}.${key}`)]);
    }
    return entries;
  }

  defaults(node: unknown, what: string): RunDefaults {
    if (node === null || node === undefined) return { shell: null, workingDirectory: null };
    let shell: string | null = null;
    let workingDirectory: string | null = null;
    for (const { key, value } of this.pairs(node, what, ['run'])) {
      void key;
      for (const entry of this.pairs(value, `${what}.run`, ['shell', 'working-directory'])) {
        if (entry.key === 'shell') shell = this.text(entry.value, `${what}.run.shell`);
        else workingDirectory = this.text(entry.value, `${what}.run.working-directory`);
      }
    }
    return { shell, workingDirectory };
  }
}

function describeNode(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return describeValue(node.value);
  return describeValue(node);
}

function readStep(reader: Reader, node: unknown, index: number, jobId: string): WorkflowStep {
  const what = `jobs.${jobId}.steps[${index}]`;
  const step: {
    -readonly [K in keyof WorkflowStep]: WorkflowStep[K];
  } = {
    index,
    line: reader.line(node),
    id: null,
    name: null,
    run: null,
    uses: null,
    shell: null,
    workingDirectory: null,
    env: [],
    if: null,
    continueOnError: false,
    timeoutMinutes: null,
  };
  for (const { key, value } of reader.pairs(node, what, STEP_KEYS)) {
    switch (key) {
      case 'id': {
        const id = reader.text(value, `${what}.id`);
        if (!STEP_ID.test(id)) throw reader.error(value, `${what}.id '${id}' must start with a letter or '_' and contain only letters, digits, '-' and '_'`);
        step.id = id;
        break;
      }
      case 'name':
        step.name = reader.text(value, `${what}.name`);
        break;
      case 'run':
        step.run = reader.text(value, `${what}.run`);
        break;
      case 'uses':
        step.uses = reader.text(value, `${what}.uses`);
        break;
      case 'shell':
        step.shell = reader.text(value, `${what}.shell`);
        break;
      case 'working-directory':
        step.workingDirectory = reader.text(value, `${what}.working-directory`);
        break;
      case 'env':
        step.env = reader.env(value, `${what}.env`);
        break;
      case 'if': {
        const condition = reader.scalar(value, `${what}.if`);
        step.if = String(condition);
        break;
      }
      case 'continue-on-error': {
        const flag = reader.scalar(value, `${what}.continue-on-error`);
        if (typeof flag === 'number') throw reader.error(value, `${what}.continue-on-error must be true, false or an expression, not ${flag}`);
        step.continueOnError = flag;
        break;
      }
      case 'timeout-minutes': {
        const minutes = reader.scalar(value, `${what}.timeout-minutes`);
        if (typeof minutes === 'boolean') throw reader.error(value, `${what}.timeout-minutes must be a number of minutes, not ${minutes}`);
        step.timeoutMinutes = minutes;
        break;
      }
      default:
        // `with:` only feeds `uses:` steps, which are not run locally.
        break;
    }
  }
  if (step.run === null && step.uses === null) throw reader.error(node, `${what} has neither 'run' nor 'uses'`);
  if (step.run !== null && step.uses !== null) throw reader.error(node, `${what} has both 'run' and 'uses'; a step is one or the other`);
  return step;
}

function readJob(reader: Reader, id: string, keyNode: unknown, node: unknown): WorkflowJob {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) throw reader.error(keyNode, `job id '${id}' must start with a letter or '_' and contain only letters, digits, '-' and '_'`);
  const what = `jobs.${id}`;
  const job: {
    -readonly [K in keyof WorkflowJob]: WorkflowJob[K];
  } = {
    id,
    line: reader.line(keyNode),
    name: null,
    if: null,
    env: [],
    defaults: { shell: null, workingDirectory: null },
    steps: [],
    container: null,
    services: [],
    uses: null,
    timeoutMinutes: null,
    hasMatrix: false,
    needs: [],
  };
  let stepsNode: unknown = undefined;
  for (const { key, value } of reader.pairs(node, what, JOB_KEYS)) {
    switch (key) {
      case 'name':
        job.name = reader.text(value, `${what}.name`);
        break;
      case 'if':
        job.if = String(reader.scalar(value, `${what}.if`));
        break;
      case 'env':
        job.env = reader.env(value, `${what}.env`);
        break;
      case 'defaults':
        job.defaults = reader.defaults(value, `${what}.defaults`);
        break;
      case 'steps':
        stepsNode = value;
        break;
      case 'container':
        if (isMap(value)) {
          const image = value.items.find((pair) => isScalar(pair.key) && pair.key.value === 'image');
          job.container = image ? reader.text(image.value, `${what}.container.image`) : '(no image)';
        } else {
          job.container = reader.text(value, `${what}.container`);
        }
        break;
      case 'services':
        job.services = reader.pairs(value, `${what}.services`, null).map((entry) => entry.key);
        break;
      case 'uses':
        job.uses = reader.text(value, `${what}.uses`);
        break;
      case 'timeout-minutes': {
        const minutes = reader.scalar(value, `${what}.timeout-minutes`);
        if (typeof minutes === 'boolean') throw reader.error(value, `${what}.timeout-minutes must be a number of minutes, not ${minutes}`);
        job.timeoutMinutes = minutes;
        break;
      }
      case 'strategy':
        if (isMap(value)) job.hasMatrix = value.items.some((pair) => isScalar(pair.key) && pair.key.value === 'matrix');
        break;
      case 'needs':
        if (isSeq(value)) job.needs = value.items.map((item, i) => reader.text(item, `${what}.needs[${i}]`));
        else job.needs = [reader.text(value, `${what}.needs`)];
        break;
      default:
        // runs-on, permissions, environment, concurrency, outputs, with, secrets, snapshot, continue-on-error:
        // they shape where and with which rights GitHub runs the job, not what its steps do here.
        break;
    }
  }
  if (job.uses !== null && stepsNode !== undefined) throw reader.error(node, `${what} calls a reusable workflow ('uses') and also has 'steps'`);
  if (job.uses === null) {
    if (stepsNode === undefined) throw reader.error(node, `${what} has no 'steps'`);
    if (!isSeq(stepsNode)) throw reader.error(stepsNode, `${what}.steps must be a list, not ${describeNode(stepsNode)}`);
    if (stepsNode.items.length === 0) throw reader.error(stepsNode, `${what}.steps is empty`);
    if (stepsNode.items.length > MAX_STEPS) throw reader.error(stepsNode, `${what}.steps has more than ${MAX_STEPS} steps`);
    job.steps = stepsNode.items.map((item, index) => readStep(reader, item, index, id));
    const seen = new Map<string, number>();
    for (const step of job.steps) {
      if (step.id === null) continue;
      const first = seen.get(step.id);
      if (first !== undefined) {
        throw reader.error(stepsNode.items[step.index], `${what}.steps[${step.index}] repeats the id '${step.id}' of steps[${first}]`);
      }
      seen.set(step.id, step.index);
    }
  }
  return job;
}

/** Parses and validates a workflow file; `path` names it in every error. */
export function parseWorkflow(text: string, path: string): Workflow {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = counter.linePos(syntax.pos[0]);
    throw new RunwallError('RW_WORKFLOW_INVALID', `${path}:${pos.line}:${pos.col}: not valid YAML: ${syntax.message.split('\n')[0] ?? ''}`, { path, line: pos.line });
  }
  const reader = new Reader(path, counter);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) throw reader.error(root, 'is empty; a workflow has at least `jobs:`');
  let name: string | null = null;
  let env: EnvEntries = [];
  let defaults: RunDefaults = { shell: null, workingDirectory: null };
  let jobs: WorkflowJob[] | null = null;
  for (const { key, pair, value } of reader.pairs(root, 'the workflow', WORKFLOW_KEYS)) {
    switch (key) {
      case 'name':
        name = reader.text(value, 'name');
        break;
      case 'env':
        env = reader.env(value, 'env');
        break;
      case 'defaults':
        defaults = reader.defaults(value, 'defaults');
        break;
      case 'jobs': {
        const entries = reader.pairs(value, 'jobs', null);
        if (entries.length === 0) throw reader.error(pair.key, '`jobs` is empty');
        jobs = entries.map((entry) => readJob(reader, entry.key, entry.pair.key, entry.value));
        break;
      }
      default:
        break;
    }
  }
  if (jobs === null) throw reader.error(root, 'has no `jobs:`');
  return deepFreeze({ path, name, env, defaults, jobs });
}

// ---------------------------------------------------------------- the plan of one job

export interface PlannedStep {
  readonly index: number;
  /** Unique in the run: the step's `id:` or `step-N` (N from 1). */
  readonly id: string;
  /** The `id:` the workflow gave it (what `steps.<id>` refers to), or null. */
  readonly workflowId: string | null;
  readonly line: number | null;
  /** `name:`, or `Run <first line>` / `Run <action>` as GitHub shows it. */
  readonly name: Template;
  readonly nameText: string;
  /** The script, or null when the step is not a `run:` step. */
  readonly run: Template | null;
  /** Why this step can never run here (a `uses:` action, the job's container); null when it may. */
  readonly cannotRun: string | null;
  /** The effective `shell:` (step, then job defaults, then workflow defaults), or null for the default. */
  readonly shell: string | null;
  readonly workingDirectory: Template | null;
  readonly env: readonly (readonly [string, Template])[];
  /** The `if:` with GitHub's implicit `success() &&` when it has no status function. */
  readonly condition: Expression;
  readonly conditionText: string;
  readonly continueOnError: boolean | Template;
  readonly timeoutMinutes: number | Template | null;
}

export interface JobPlan {
  readonly workflow: { readonly path: string; readonly name: string | null };
  readonly job: {
    readonly id: string;
    readonly name: string | null;
    readonly condition: Expression | null;
    readonly conditionText: string | null;
    readonly timeoutMinutes: number | Template | null;
    readonly hasMatrix: boolean;
    readonly hasNeeds: boolean;
  };
  readonly env: { readonly workflow: readonly (readonly [string, Template])[]; readonly job: readonly (readonly [string, Template])[] };
  readonly steps: readonly PlannedStep[];
  /** What the plan leaves out of the job as a whole (services, …), for the report. */
  readonly notes: readonly string[];
}

function firstLine(script: string): string {
  return script.trim().split('\n')[0]?.trim() ?? '';
}

function template(text: string, where: string, path: string, line: number | null): Template {
  try {
    return parseTemplate(text);
  } catch (error: unknown) {
    if (error instanceof ExpressionSyntaxError) {
      throw new RunwallError('RW_WORKFLOW_INVALID', `${line === null ? path : `${path}:${line}`}: ${where}: ${error.message} (at character ${error.offset + 1})`, {
        path,
        ...(line !== null ? { line } : {}),
      });
    }
    throw error;
  }
}

function condition(text: string, where: string, path: string, line: number | null): Expression {
  try {
    return parseCondition(text);
  } catch (error: unknown) {
    if (error instanceof ExpressionSyntaxError) {
      throw new RunwallError('RW_WORKFLOW_INVALID', `${line === null ? path : `${path}:${line}`}: ${where}: ${error.message} (at character ${error.offset + 1})`, {
        path,
        ...(line !== null ? { line } : {}),
      });
    }
    throw error;
  }
}

function minutes(value: number | string | null, where: string, path: string, line: number | null): number | Template | null {
  if (value === null) return null;
  if (typeof value === 'number') {
    if (!(value > 0) || !Number.isFinite(value)) throw new RunwallError('RW_WORKFLOW_INVALID', `${line === null ? path : `${path}:${line}`}: ${where} must be a positive number of minutes, not ${value}`, { path });
    return value;
  }
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return minutes(Number(value), where, path, line);
  return template(value, where, path, line);
}

/** Ids in the plan: the step's own, else `step-N`, never twice. */
function stepIds(steps: readonly WorkflowStep[]): string[] {
  const taken = new Set(steps.flatMap((step) => (step.id === null ? [] : [step.id])));
  return steps.map((step) => {
    if (step.id !== null) return step.id;
    let id = `step-${step.index + 1}`;
    for (let n = 2; taken.has(id); n += 1) id = `step-${step.index + 1}-${n}`;
    taken.add(id);
    return id;
  });
}

function whyNotRunnable(step: WorkflowStep, job: WorkflowJob): string | null {
  if (job.container !== null) return `the job runs its steps in container '${job.container}'; runwall exec runs steps on this machine only`;
  if (step.uses === null) return null;
  if (step.uses.startsWith('docker://')) return `'${step.uses}' is a Docker action; runwall exec runs only run: steps`;
  if (step.uses.startsWith('./') || step.uses.startsWith('.\\')) return `'${step.uses}' is a local action; runwall exec runs only run: steps`;
  return `'${step.uses}' is a remote action; runwall exec runs only run: steps (nothing is downloaded)`;
}

/**
 * The plan of job `jobId`: RW_WORKFLOW_JOB_UNKNOWN when the workflow has no
 * such job, RW_WORKFLOW_UNSUPPORTED when the job calls a reusable workflow.
 */
export function planJob(workflow: Workflow, jobId: string): JobPlan {
  const job = workflow.jobs.find((candidate) => candidate.id === jobId);
  if (job === undefined) {
    throw new RunwallError('RW_WORKFLOW_JOB_UNKNOWN', `${workflow.path} has no job '${jobId}'; its jobs: ${workflow.jobs.map((j) => j.id).join(', ')}`, {
      path: workflow.path,
      job: jobId,
      jobs: workflow.jobs.map((j) => j.id),
    });
  }
  const { path } = workflow;
  if (job.uses !== null) {
    throw new RunwallError('RW_WORKFLOW_UNSUPPORTED', `${path}:${job.line ?? 1}: job '${jobId}' calls the reusable workflow '${job.uses}'; run that workflow's jobs instead`, {
      path,
      job: jobId,
    });
  }
  const ids = stepIds(job.steps);
  const envOf = (entries: EnvEntries, where: string, line: number | null): (readonly [string, Template])[] =>
    entries.map(([key, value]) => [key, template(value, `${where}.${key}`, path, line)] as const);
  const steps = job.steps.map((step, i): PlannedStep => {
    const where = `jobs.${jobId}.steps[${step.index}]`;
    const displayName = step.name ?? (step.run !== null ? `Run ${firstLine(step.run)}` : `Run ${step.uses ?? ''}`);
    const ifText = step.if ?? 'success()';
    return {
      index: step.index,
      id: ids[i] ?? `step-${step.index + 1}`,
      workflowId: step.id,
      line: step.line,
      // A name the workflow gave is evaluated like GitHub does; the generated `Run …` shows the script as written.
      name: step.name !== null ? template(step.name, `${where}.name`, path, step.line) : [displayName],
      nameText: displayName,
      run: step.run === null ? null : template(step.run, `${where}.run`, path, step.line),
      cannotRun: whyNotRunnable(step, job),
      shell: step.shell ?? job.defaults.shell ?? workflow.defaults.shell,
      workingDirectory:
        step.workingDirectory !== null || job.defaults.workingDirectory !== null || workflow.defaults.workingDirectory !== null
          ? template((step.workingDirectory ?? job.defaults.workingDirectory ?? workflow.defaults.workingDirectory) as string, `${where}.working-directory`, path, step.line)
          : null,
      env: envOf(step.env, `${where}.env`, step.line),
      condition: condition(ifText, `${where}.if`, path, step.line),
      conditionText: ifText,
      continueOnError: typeof step.continueOnError === 'boolean' ? step.continueOnError : template(step.continueOnError, `${where}.continue-on-error`, path, step.line),
      timeoutMinutes: minutes(step.timeoutMinutes, `${where}.timeout-minutes`, path, step.line),
    };
  });
  const notes: string[] = [];
  if (job.services.length > 0) notes.push(`service containers are not started: ${job.services.join(', ')}`);
  if (job.needs.length > 0) notes.push(`jobs this job needs are not run: ${job.needs.join(', ')} (their outputs are not known)`);
  if (job.hasMatrix) notes.push('the job has a matrix; expressions that read matrix values cannot be evaluated and their steps are skipped');
  return deepFreeze({
    workflow: { path, name: workflow.name },
    job: {
      id: job.id,
      name: job.name,
      condition: job.if === null ? null : condition(job.if, `jobs.${jobId}.if`, path, job.line),
      conditionText: job.if,
      timeoutMinutes: minutes(job.timeoutMinutes, `jobs.${jobId}.timeout-minutes`, path, job.line),
      hasMatrix: job.hasMatrix,
      hasNeeds: job.needs.length > 0,
    },
    env: { workflow: envOf(workflow.env, 'env', null), job: envOf(job.env, `jobs.${jobId}.env`, job.line) },
    steps,
    notes,
  });
}
