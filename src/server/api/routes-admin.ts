/** Who am I, sessions for the web app, and the management of tenants, keys and users. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { RUNWALL_VERSION, RunwallError } from '../../protocol/index.js';
import { CAPABILITIES, ROLES, roleCan, type Principal, type Role } from '../store/types.js';
import type { ApiContext } from './context.js';
import { SESSION_COOKIE, principalOf, readCookie, setSessionCookie } from './context.js';
import { bodyChecker, checkQuery } from './params.js';

const RoleSchema = Type.Union(ROLES.map((r) => Type.Literal(r)));

const SessionBody = Type.Union([
  Type.Object({ email: Type.String({ minLength: 1, maxLength: 200 }), password: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
  Type.Object({ apiKey: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
]);
const KeyBody = Type.Object({ role: RoleSchema, label: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });
const UserBody = Type.Object(
  { email: Type.String({ minLength: 3, maxLength: 200, pattern: '^[^@\\s]+@[^@\\s]+$' }), password: Type.String({ minLength: 12, maxLength: 500 }), role: RoleSchema },
  { additionalProperties: false },
);
const TenantBody = Type.Object(
  { slug: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }), name: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);

const RANK: Readonly<Record<Role, number>> = { agent: 0, member: 1, admin: 2, operator: 3 };

function me(principal: Principal) {
  return {
    tenant: principal.tenantSlug,
    role: principal.role,
    name: principal.name,
    via: principal.via,
    capabilities: CAPABILITIES.filter((c) => roleCan(principal.role, c)),
  };
}

/** Nobody hands out more power than they have (an admin cannot mint operator keys). */
function checkGrant(principal: Principal, role: Role): void {
  if (RANK[role] > RANK[principal.role]) {
    throw new RunwallError('RW_FORBIDDEN', `a ${principal.role} may not create a ${role}`, { role });
  }
}

export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const checkSession = bodyChecker(SessionBody, 'not a sign-in request ({ email, password } or { apiKey })');
  const checkKey = bodyChecker(KeyBody, 'not an API key request');
  const checkUser = bodyChecker(UserBody, 'not a user (email, password of at least 12 characters, role)');
  const checkTenant = bodyChecker(TenantBody, 'not a tenant (slug: lower-case letters, digits, -; name)');

  app.get('/api/v1/health', { config: { access: 'public' } }, async () => ({ ok: true, version: RUNWALL_VERSION, database: ctx.store.dialect }));

  app.get('/api/v1/me', { config: { access: 'config' } }, async (request) => me(principalOf(request)));

  app.post('/api/v1/session', { config: { access: 'public' } }, async (request, reply) => {
    const now = ctx.now();
    const attempts = await ctx.store.hitRateLimit(`login:${request.ip}`, 60_000, now);
    if (attempts > ctx.options.authFailuresPerMinute) {
      const retryAfter = Math.max(1, Math.ceil((60_000 - (now % 60_000)) / 1000));
      throw new RunwallError('RW_RATE_LIMITED', `too many sign-in attempts from this address; retry in ${retryAfter} s`, { retryAfter });
    }
    const body = checkSession(request.body);
    const principal = 'apiKey' in body ? await ctx.store.authenticateApiKey(body.apiKey) : await ctx.store.authenticatePassword(body.email, body.password);
    if (!principal) throw new RunwallError('RW_AUTH_REQUIRED', 'apiKey' in body ? 'the API key is not valid' : 'wrong email or password');
    if (principal.role === 'agent') throw new RunwallError('RW_FORBIDDEN', 'an agent key cannot sign in to the web app; use a member, admin or operator key');
    const token = await ctx.store.createSession(principal, ctx.options.sessionTtlMs);
    setSessionCookie(reply, token, ctx.options);
    return me({ ...principal, via: 'session' });
  });

  app.delete('/api/v1/session', { config: { access: 'public' } }, async (request, reply) => {
    const token = readCookie(request, SESSION_COOKIE);
    if (token) await ctx.store.deleteSession(token);
    setSessionCookie(reply, null, ctx.options);
    return reply.code(204).send();
  });

  app.get('/api/v1/keys', { config: { access: 'manage' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    return { keys: await ctx.store.listApiKeys(principal.tenantId) };
  });

  app.post('/api/v1/keys', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    const body = checkKey(request.body);
    checkGrant(principal, body.role);
    const { info, key } = await ctx.store.createApiKey(principal.tenantId, body.role, body.label);
    return reply.code(201).send({ ...info, key });
  });

  app.delete<{ Params: { keyId: string } }>('/api/v1/keys/:keyId', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    if (!(await ctx.store.revokeApiKey(principal.tenantId, request.params.keyId))) {
      throw new RunwallError('RW_NOT_FOUND', `no active key '${request.params.keyId}'`);
    }
    return reply.code(204).send();
  });

  app.get('/api/v1/users', { config: { access: 'manage' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    return { users: await ctx.store.listUsers(principal.tenantId) };
  });

  app.post('/api/v1/users', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    const body = checkUser(request.body);
    checkGrant(principal, body.role);
    return reply.code(201).send(await ctx.store.createUser(principal.tenantId, body.email, body.password, body.role));
  });

  app.get('/api/v1/tenants', { config: { access: 'operate' } }, async (request) => {
    checkQuery(request.query as Record<string, string>, []);
    return { tenants: await ctx.store.listTenants() };
  });

  app.post('/api/v1/tenants', { config: { access: 'operate' } }, async (request, reply) => {
    const body = checkTenant(request.body);
    const tenant = await ctx.store.createTenant(body.slug, body.name);
    const { info, key } = await ctx.store.createApiKey(tenant.id, 'admin', 'first admin key');
    return reply.code(201).send({ tenant, adminKey: { ...info, key } });
  });
}
