/**
 * Ingest: whole run reports and event batches. Idempotent by (tenant, run id,
 * seq); parts may arrive in any order and late. A bad upload is refused whole.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { RunEvent, RunMetadata, RunwallError, checkRunReport, type RunReport } from '../../protocol/index.js';
import type { ApiContext } from './context.js';
import { principalOf } from './context.js';
import { bodyChecker, runIdParam } from './params.js';

const EventBatch = Type.Object(
  {
    /** Run metadata, when the uploader has it (lets the run show up with its repository before the report arrives). */
    run: Type.Optional(RunMetadata),
    events: Type.Array(RunEvent),
  },
  { additionalProperties: false },
);

const RUN_ID = /^[\x21-\x7e]{1,200}$/;

function checkRunId(runId: string, where: string): void {
  if (!RUN_ID.test(runId)) {
    throw new RunwallError('RW_PAYLOAD_INVALID', `${where}: run id must be 1-200 printable ASCII characters without spaces`, {
      problems: [{ path: '/run/runId', message: 'printable ASCII, 1-200 characters' }],
    });
  }
}

export function registerIngestRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const checkBatch = bodyChecker(EventBatch, 'not an event batch');

  app.post('/api/v1/runs', { config: { access: 'ingest' } }, async (request, reply) => {
    const principal = principalOf(request);
    const problems = checkRunReport(request.body);
    if (problems.length > 0) {
      throw new RunwallError('RW_PAYLOAD_INVALID', `not a runwall run report: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
    }
    const report = request.body as RunReport;
    checkRunId(report.run.runId, 'report');
    const { events, ...rest } = report;
    const result = await ctx.store.ingest(principal.tenantId, { runId: report.run.runId, report: rest, events }, ctx.now());
    if (ctx.checks && report.run.ci?.provider === 'github' && report.run.ci.repository && report.run.ci.sha) {
      ctx.track(postCheck(ctx, principal.tenantId, report.run.runId));
    }
    return reply.code(result.created ? 201 : 200).send(result);
  });

  app.post<{ Params: { runId: string } }>('/api/v1/runs/:runId/events', { config: { access: 'ingest' } }, async (request, reply) => {
    const principal = principalOf(request);
    const runId = runIdParam(request.params.runId);
    const batch = checkBatch(request.body);
    if (batch.run && batch.run.runId !== runId) {
      throw new RunwallError('RW_PAYLOAD_INVALID', `the batch's run.runId '${batch.run.runId}' is not the run in the path '${runId}'`, {
        problems: [{ path: '/run/runId', message: 'must equal the run id in the path' }],
      });
    }
    const result = await ctx.store.ingest(principal.tenantId, { runId, events: batch.events, ...(batch.run ? { metadata: batch.run } : {}) }, ctx.now());
    return reply.code(result.created ? 201 : 200).send(result);
  });
}

/** One server process claims the check run in the database; the others skip it. */
async function postCheck(ctx: ApiContext, tenantId: number, runId: string): Promise<void> {
  const checks = ctx.checks;
  if (!checks) return;
  if (!(await ctx.store.claimCheckRun(tenantId, runId, ctx.now()))) return;
  try {
    const run = await ctx.store.getRun(tenantId, runId);
    if (!run) return;
    const checkId = await checks.post(run, ctx.now());
    await ctx.store.finishCheckRun(tenantId, runId, { state: 'posted', checkId }, ctx.now());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await ctx.store.finishCheckRun(tenantId, runId, { state: 'failed', error: message }, ctx.now());
  }
}
