/** Assembles the RunReport from what a run collected. Pure. */
import { buildProcessTree, recommendPolicy, summarizeEvents, summarizeSteps } from '../../policy/index.js';
import {
  REPORT_SCHEMA_VERSION,
  RUNWALL_VERSION,
  type EffectivePolicy,
  type EnforcementStatus,
  type RunEvent,
  type RunMetadata,
  type RunReport,
} from '../../protocol/index.js';

export interface ReportInput {
  readonly run: Omit<RunMetadata, 'tool'>;
  readonly policy: EffectivePolicy;
  readonly enforcement: EnforcementStatus;
  readonly events: readonly RunEvent[];
}

export function buildReport(input: ReportInput): RunReport {
  const events = [...input.events];
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    run: { ...input.run, tool: { name: 'runwall', version: RUNWALL_VERSION } },
    policy: input.policy,
    enforcement: input.enforcement,
    events,
    summary: summarizeEvents(events),
    ...(events.some((event) => event.kind === 'step') ? { steps: summarizeSteps(events) } : {}),
    ...(events.some((event) => event.kind === 'process') ? { processes: [...buildProcessTree(events)] } : {}),
    recommendedPolicy: recommendPolicy(events, input.policy),
  };
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
