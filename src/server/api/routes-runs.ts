/** Reading runs: the list, one run, its events, and views computed from them. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { RunwallError, type EventKind, type RunEvent } from '../../protocol/index.js';
import { parseEndpointList } from '../../policy/index.js';
import { compileCandidate, recommendFromEvents, replayEvents } from '../advice.js';
import { buildNetworkTree, buildProcessTree, diffEndpoints, processTreeFromReport } from '../views.js';
import type { ApiContext } from './context.js';
import { principalOf } from './context.js';
import { bodyChecker, checkQuery, cursorParam, encodeCursor, intParam, runIdParam, textParam, timeParam, verdictParam } from './params.js';

const EVENT_KINDS: readonly EventKind[] = ['dns', 'connection', 'http', 'process', 'file', 'step', 'detection', 'agent'];
const NETWORK_KINDS: readonly EventKind[] = ['dns', 'connection', 'http'];
/** Events one view reads from one run; larger runs are shown truncated, and say so. */
const VIEW_EVENT_CAP = 200_000;

function kindsParam(value: string | undefined): EventKind[] | undefined {
  if (value === undefined) return undefined;
  const kinds = value.split(',');
  for (const kind of kinds) {
    if (!(EVENT_KINDS as readonly string[]).includes(kind)) {
      throw new RunwallError('RW_QUERY_INVALID', `kind must be a comma-separated list of ${EVENT_KINDS.join(', ')}, not '${kind}'`, { parameter: 'kind', value: kind });
    }
  }
  return kinds as EventKind[];
}

const ReplayBody = Type.Object(
  {
    /** Candidate allowed-endpoints; default: the recommendation for this job. */
    allowedEndpoints: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    /** How many of the job's runs to replay, newest first (this one included). */
    runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
  },
  { additionalProperties: false },
);

function notFound(runId: string): RunwallError {
  return new RunwallError('RW_NOT_FOUND', `no run '${runId}'`);
}

export function registerRunRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const checkReplay = bodyChecker(ReplayBody, 'not a replay request');

  app.get('/api/v1/runs', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    const q = checkQuery(request.query as Record<string, string>, ['repo', 'workflow', 'job', 'verdict', 'from', 'to', 'limit', 'cursor']);
    const repo = textParam('repo', q.repo);
    const workflow = textParam('workflow', q.workflow);
    const job = textParam('job', q.job);
    const verdict = verdictParam('verdict', q.verdict);
    const fromMs = timeParam('from', q.from);
    const toMs = timeParam('to', q.to);
    const cursor = cursorParam(q.cursor);
    const page = await ctx.store.listRuns(principal.tenantId, {
      limit: intParam('limit', q.limit, 1, 200, 50),
      ...(repo === undefined ? {} : { repo }),
      ...(workflow === undefined ? {} : { workflow }),
      ...(job === undefined ? {} : { job }),
      ...(verdict === undefined ? {} : { verdict }),
      ...(fromMs === undefined ? {} : { fromMs }),
      ...(toMs === undefined ? {} : { toMs }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    return { runs: page.runs, next: page.next ? encodeCursor(page.next) : null };
  });

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    const runId = runIdParam(request.params.runId);
    const run = await ctx.store.getRun(principal.tenantId, runId);
    if (!run) throw notFound(runId);
    const check = await ctx.store.getCheckRun(principal.tenantId, runId);
    return { run, check };
  });

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId/events', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    const q = checkQuery(request.query as Record<string, string>, ['kind', 'verdict', 'after', 'limit']);
    const runId = runIdParam(request.params.runId);
    const kinds = kindsParam(q.kind);
    const verdict = verdictParam('verdict', q.verdict);
    const page = await ctx.store.listEvents(principal.tenantId, runId, {
      afterSeq: intParam('after', q.after, 0, Number.MAX_SAFE_INTEGER, 0),
      limit: intParam('limit', q.limit, 1, 1000, 100),
      ...(kinds ? { kinds } : {}),
      ...(verdict ? { verdict } : {}),
    });
    if (!page) throw notFound(runId);
    return page;
  });

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId/timeline', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    const q = checkQuery(request.query as Record<string, string>, ['buckets']);
    const runId = runIdParam(request.params.runId);
    const timeline = await ctx.store.timeline(principal.tenantId, runId, intParam('buckets', q.buckets, 1, 500, 60));
    if (!timeline) throw notFound(runId);
    return timeline;
  });

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId/network', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    const runId = runIdParam(request.params.runId);
    const events = await ctx.store.runEvents(principal.tenantId, runId, [...NETWORK_KINDS, 'step'], VIEW_EVENT_CAP + 1);
    if (!events) throw notFound(runId);
    return buildNetworkTree(events.slice(0, VIEW_EVENT_CAP), events.length > VIEW_EVENT_CAP);
  });

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId/processes', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    const runId = runIdParam(request.params.runId);
    const run = await ctx.store.getRun(principal.tenantId, runId);
    if (!run) throw notFound(runId);
    // The report's own tree when the agent wrote one (it tells reused pids apart); else one built from the events.
    const reported = run.report?.processes;
    const events = await ctx.store.runEvents(principal.tenantId, runId, reported ? NETWORK_KINDS : ['process', ...NETWORK_KINDS], VIEW_EVENT_CAP);
    if (!events) throw notFound(runId);
    return reported && reported.length > 0 ? processTreeFromReport(reported, events) : buildProcessTree(events);
  });

  /** Events of the job's recent runs (this one included), the recommendation over them, and what is in force. */
  async function jobAdvice(tenantId: number, runId: string, runs: number) {
    const jobRuns = await ctx.store.jobRuns(tenantId, runId, runs);
    if (!jobRuns || jobRuns.length === 0) throw notFound(runId);
    const perRun: { ref: (typeof jobRuns)[number]; events: readonly RunEvent[] }[] = [];
    for (const ref of jobRuns) perRun.push({ ref, events: await ctx.store.runEventsByPk(tenantId, ref.pk, NETWORK_KINDS, VIEW_EVENT_CAP) });
    const blockList = (await ctx.store.blockList(false)).entries;
    const recommended = recommendFromEvents(
      perRun.flatMap((r) => r.events),
      blockList,
    );
    return { jobRuns, perRun, blockList, recommended };
  }

  app.get<{ Params: { runId: string } }>('/api/v1/runs/:runId/recommendation', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    const q = checkQuery(request.query as Record<string, string>, ['runs']);
    const runId = runIdParam(request.params.runId);
    const run = await ctx.store.getRun(principal.tenantId, runId);
    if (!run) throw notFound(runId);
    const { jobRuns, recommended } = await jobAdvice(principal.tenantId, runId, intParam('runs', q.runs, 1, 50, 10));
    // In force: what the policy store gives this job now, else what this run was enforced with.
    const org = run.repo?.split('/')[0];
    const stored =
      org && run.repo
        ? await ctx.store.resolvePolicy(principal.tenantId, { org, repo: run.repo, ...(run.workflow ? { workflow: run.workflow } : {}), ...(run.job ? { job: run.job } : {}) })
        : null;
    const inForce = stored
      ? { source: 'policy-store' as const, policy: stored.policy.name, mode: stored.policy.fields.egressPolicy, allowedEndpoints: [...stored.policy.fields.allowedEndpoints] }
      : run.report
        ? { source: 'run' as const, policy: null, mode: run.report.policy.egressPolicy, allowedEndpoints: run.report.policy.allowedEndpoints.map((e) => e.text) }
        : { source: 'none' as const, policy: null, mode: null, allowedEndpoints: [] as string[] };
    return {
      basedOn: jobRuns.map((r) => ({ runId: r.runId, startedAt: r.startedAt, verdict: r.verdict })),
      recommended,
      inForce,
      diff: diffEndpoints(inForce.allowedEndpoints, recommended.allowedEndpoints),
    };
  });

  app.post<{ Params: { runId: string } }>('/api/v1/runs/:runId/replay', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    const runId = runIdParam(request.params.runId);
    const body = checkReplay(request.body ?? {});
    const { perRun, blockList, recommended } = await jobAdvice(principal.tenantId, runId, body.runs ?? 10);
    const candidateText = body.allowedEndpoints ?? recommended.allowedEndpoints;
    const candidate = parseEndpointList(candidateText, 'allowedEndpoints');
    const compiled = compileCandidate(candidate, blockList);
    return {
      candidate: candidate.map((e) => e.text),
      runs: perRun.map(({ ref, events }) => {
        const outcome = replayEvents(compiled, events);
        return {
          runId: ref.runId,
          startedAt: ref.startedAt,
          verdict: ref.verdict,
          networkEvents: outcome.networkEvents,
          wouldBlock: outcome.wouldBlock,
          truncated: events.length >= VIEW_EVENT_CAP,
        };
      }),
    };
  });
}
