/**
 * The global block list: one for the whole service, changed by operators,
 * fetched by agents at start and polled with If-None-Match during a run. Its
 * version lives in the database, so every server process gives the same ETag.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RunwallError, type BlockListEntry } from '../../protocol/index.js';
import { parseBlockList } from '../../policy/index.js';
import type { ApiContext } from './context.js';
import { principalOf } from './context.js';
import { bodyChecker, checkQuery, timeParam } from './params.js';

const AddBody = Type.Object(
  {
    entry: Type.String({ minLength: 1, maxLength: 300 }),
    reason: Type.String({ minLength: 1, maxLength: 1000 }),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
  },
  { additionalProperties: false },
);

export function blockListEtag(version: number, includeRetired: boolean): string {
  return `"bl-${version}${includeRetired ? '-all' : ''}"`;
}

/** True when If-None-Match names `etag` (or `*`). Weak validators compare equal, as RFC 9110 says for GET. */
export function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/** One entry, validated by the policy part's block-list parser (the same rules as a block-list file). */
export function parseBlockEntry(entry: string, reason: string, source: string | undefined): BlockListEntry {
  const [parsed] = parseBlockList(JSON.stringify([{ entry, reason, ...(source === undefined ? {} : { source }) }]), 'block-list entry');
  if (!parsed) throw new RunwallError('RW_BLOCKLIST_INVALID', `block-list entry '${entry}' is empty`);
  return parsed;
}

export function registerBlockListRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const checkAdd = bodyChecker(AddBody, 'not a block-list entry');

  app.get('/api/v1/blocklist', { config: { access: 'config' } }, async (request, reply) => {
    const q = checkQuery(request.query as Record<string, string>, ['include']);
    if (q.include !== undefined && q.include !== 'retired') {
      throw new RunwallError('RW_QUERY_INVALID', `include must be 'retired', not '${q.include}'`, { parameter: 'include', value: q.include });
    }
    const includeRetired = q.include === 'retired';
    // The cheap version check first: a poll that finds no change reads one row.
    const version = await ctx.store.blockListVersion();
    const etag = blockListEtag(version, includeRetired);
    reply.header('etag', etag).header('cache-control', 'no-cache');
    if (notModified(request, etag)) return reply.code(304).send();
    const snapshot = await ctx.store.blockList(includeRetired);
    const current = blockListEtag(snapshot.version, includeRetired);
    reply.header('etag', current);
    return { version: snapshot.version, entries: snapshot.entries };
  });

  app.post('/api/v1/blocklist', { config: { access: 'operate' } }, async (request, reply) => {
    const principal = principalOf(request);
    const body = checkAdd(request.body);
    const entry = parseBlockEntry(body.entry, body.reason, body.source);
    const stored = await ctx.store.addBlockEntry(entry, principal.name, ctx.now());
    const version = await ctx.store.blockListVersion();
    return reply.code(201).send({ entry: stored, version });
  });

  app.delete<{ Params: { id: string } }>('/api/v1/blocklist/:id', { config: { access: 'operate' } }, async (request) => {
    const principal = principalOf(request);
    if (!/^\d{1,15}$/.test(request.params.id)) throw new RunwallError('RW_NOT_FOUND', `no block-list entry '${request.params.id}'`);
    const entry = await ctx.store.retireBlockEntry(Number(request.params.id), principal.name, ctx.now());
    const version = await ctx.store.blockListVersion();
    return { entry, version };
  });

  app.get('/api/v1/fleet-alerts', { config: { access: 'operate' } }, async (request) => {
    const q = checkQuery(request.query as Record<string, string>, ['since']);
    const since = timeParam('since', q.since) ?? ctx.now() - 7 * 24 * 3600_000;
    return { alerts: await ctx.store.fleetAlerts(since) };
  });
}
