/** Assembles the RunReport from what a run collected. Pure. */
import { PolicyRecommender, ProcessTreeBuilder, RunSummaryBuilder, StepSummaryBuilder } from '../../policy/index.js';
import {
  REPORT_SCHEMA_VERSION,
  RUNWALL_VERSION,
  type EffectivePolicy,
  type EnforcementStatus,
  type RunEvent,
  type RunMetadata,
  type RunReport,
} from '../../protocol/index.js';

/** A report without its events: what is derived from them is all here, the events themselves are streamed to the file. */
export type ReportHead = Omit<RunReport, 'events'>;

export interface ReportMetadata {
  readonly run: Omit<RunMetadata, 'tool'>;
  readonly policy: EffectivePolicy;
  readonly enforcement: EnforcementStatus;
}

export interface ReportInput extends ReportMetadata {
  readonly events: readonly RunEvent[];
}

/**
 * What the report derives from the events (summary, steps, process tree,
 * recommended policy), taken in one event at a time as the run goes: its
 * size follows the destinations, processes and steps of the run, not the
 * number of its events, so the events themselves need not stay in memory.
 */
export class ReportDigest {
  readonly #summary = new RunSummaryBuilder();
  readonly #steps = new StepSummaryBuilder();
  readonly #processes = new ProcessTreeBuilder();
  readonly #recommended: PolicyRecommender;

  constructor(policy: EffectivePolicy) {
    this.#recommended = new PolicyRecommender(policy);
  }

  readonly add = (event: RunEvent): void => {
    this.#summary.add(event);
    this.#steps.add(event);
    this.#processes.add(event);
    this.#recommended.add(event);
  };

  /** The report's fields other than `events`, in the report's order (events go after `enforcement`). */
  head(metadata: ReportMetadata): ReportHead {
    return {
      schemaVersion: REPORT_SCHEMA_VERSION,
      run: { ...metadata.run, tool: { name: 'runwall', version: RUNWALL_VERSION } },
      policy: metadata.policy,
      enforcement: metadata.enforcement,
      summary: this.#summary.finish(),
      ...(this.#steps.hasSteps ? { steps: this.#steps.finish() } : {}),
      ...(this.#processes.hasProcesses ? { processes: [...this.#processes.finish()] } : {}),
      recommendedPolicy: this.#recommended.finish(),
    };
  }
}

export function buildReport(input: ReportInput): RunReport {
  const digest = new ReportDigest(input.policy);
  for (const event of input.events) digest.add(event);
  const { schemaVersion, run, policy, enforcement, ...derived } = digest.head(input);
  return { schemaVersion, run, policy, enforcement, events: [...input.events], ...derived };
}

const GITHUB_FIELDS = {
  repository: 'GITHUB_REPOSITORY',
  workflow: 'GITHUB_WORKFLOW',
  job: 'GITHUB_JOB',
  runId: 'GITHUB_RUN_ID',
  runAttempt: 'GITHUB_RUN_ATTEMPT',
  ref: 'GITHUB_REF',
  sha: 'GITHUB_SHA',
} as const;

/** CI metadata from the environment GitHub Actions sets (absent elsewhere). */
export function ciFromEnvironment(env: NodeJS.ProcessEnv): RunMetadata['ci'] {
  if (env['GITHUB_ACTIONS'] !== 'true') return undefined;
  const ci: NonNullable<RunMetadata['ci']> = { provider: 'github' };
  for (const [field, variable] of Object.entries(GITHUB_FIELDS) as [keyof typeof GITHUB_FIELDS, string][]) {
    const value = env[variable];
    if (value) ci[field] = value;
  }
  return ci;
}
