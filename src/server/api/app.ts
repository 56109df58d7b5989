/**
 * The HTTP server: one fastify instance serving /api/v1 and the web app.
 * Authentication, authorisation and rate limiting run in `onRequest`, before
 * any body is read, so an unauthenticated upload is refused without parsing it.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { RunwallError } from '../../protocol/index.js';
import { CheckRunPoster, type GitHubAppConfig } from '../github-checks.js';
import { roleCan, type Principal, type Store } from '../store/types.js';
import { DEFAULT_API_OPTIONS, SESSION_COOKIE, readCookie, type ApiContext, type ApiOptions } from './context.js';
import { errorBody, fromFastifyError } from './http-errors.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerBlockListRoutes } from './routes-blocklist.js';
import { registerIngestRoutes } from './routes-ingest.js';
import { registerPolicyRoutes } from './routes-policies.js';
import { registerRunRoutes } from './routes-runs.js';
import { registerWebRoutes, type WebAssets } from './routes-web.js';

export interface AppConfig {
  readonly store: Store;
  readonly options?: Partial<ApiOptions>;
  readonly github?: GitHubAppConfig | null;
  /** The web app's files; absent: the API only. */
  readonly web?: WebAssets | null;
  readonly logger?: boolean;
  readonly now?: () => number;
}

export interface RouteInfo {
  readonly method: string;
  readonly url: string;
  readonly access: string | null;
}

export interface RunwallApp {
  readonly app: FastifyInstance;
  /** Every route, with the capability it needs (tests check that none is left unguarded). */
  readonly routes: readonly RouteInfo[];
  /** Waits for background work (check runs) to finish. */
  drain(): Promise<void>;
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? '';
}

export async function buildApp(config: AppConfig): Promise<RunwallApp> {
  const options: ApiOptions = { ...DEFAULT_API_OPTIONS, ...config.options };
  const pending = new Set<Promise<unknown>>();
  const ctx: ApiContext = {
    store: config.store,
    options,
    checks: config.github ? new CheckRunPoster(config.github) : null,
    now: config.now ?? Date.now,
    track(work) {
      const tracked = work.catch(() => undefined).finally(() => pending.delete(tracked));
      pending.add(tracked);
    },
  };

  const app = Fastify({
    logger: config.logger ?? false,
    bodyLimit: options.bodyLimit,
    trustProxy: false,
  });
  app.decorateRequest('principal', null);
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      routes.push({ method, url: route.url, access: (route.config as { access?: string } | undefined)?.access ?? null });
    }
  });

  // JSON bodies parsed here so a syntax error names its position.
  // JSON only: any other content type is a 415, not a string handed to a handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.length === 0) {
      done(new RunwallError('RW_PAYLOAD_INVALID', 'the body is empty; this endpoint needs a JSON document'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      done(new RunwallError('RW_PAYLOAD_INVALID', `the body is not valid JSON: ${message}`), undefined);
    }
  });

  app.setErrorHandler((error, request, reply) => {
    const contentLength = request.headers['content-length'] ? Number(request.headers['content-length']) : null;
    const { error: coded, status } = fromFastifyError(error, { bodyLimit: options.bodyLimit, contentLength });
    if (coded.code === 'RW_INTERNAL' || coded.code === 'RW_DATABASE_FAILED') request.log.error({ err: error }, coded.message);
    if (coded.code === 'RW_RATE_LIMITED' && typeof coded.details.retryAfter === 'number') reply.header('retry-after', String(coded.details.retryAfter));
    reply.code(status).send(errorBody(coded));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new RunwallError('RW_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0] ?? ''}`);
    reply.code(404).send(errorBody(error));
  });

  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined || access === 'public') return;
    const principal = await authenticate(ctx, request);
    const now = ctx.now();
    if (!principal) {
      const failures = await ctx.store.hitRateLimit(`authfail:${request.ip}`, 60_000, now);
      if (failures > options.authFailuresPerMinute) throw rateLimited('too many failed authentications from this address', now);
      throw new RunwallError('RW_AUTH_REQUIRED', bearer(request) !== null ? 'the API key is not valid (unknown, malformed or revoked)' : 'this endpoint needs an API key (Authorization: Bearer rwk_...) or a session');
    }
    const bucket = principal.keyId ? `key:${principal.keyId}` : `user:${principal.userId ?? principal.name}`;
    const hits = await ctx.store.hitRateLimit(bucket, 60_000, now);
    if (hits > options.requestsPerMinute) throw rateLimited(`more than ${options.requestsPerMinute} requests in a minute for this caller`, now);
    if (!roleCan(principal.role, access)) {
      throw new RunwallError('RW_FORBIDDEN', `a ${principal.role} ${principal.via === 'api-key' ? 'key' : 'user'} may not ${describeCapability(access)}`, {
        role: principal.role,
        needs: access,
      });
    }
    request.principal = principal;
  });

  registerIngestRoutes(app, ctx);
  registerRunRoutes(app, ctx);
  registerPolicyRoutes(app, ctx);
  registerBlockListRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  if (config.web) registerWebRoutes(app, config.web);

  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });

  await app.ready();
  return {
    app,
    routes,
    async drain() {
      // Bounded: work started while draining is awaited too, at most a few rounds.
      for (let round = 0; round < 10 && pending.size > 0; round++) await Promise.allSettled([...pending]);
    },
  };
}

function rateLimited(message: string, now: number): RunwallError {
  const retryAfter = Math.max(1, Math.ceil((60_000 - (now % 60_000)) / 1000));
  return new RunwallError('RW_RATE_LIMITED', `${message}; retry in ${retryAfter} s`, { retryAfter });
}

function describeCapability(capability: string): string {
  switch (capability) {
    case 'ingest':
      return 'upload runs';
    case 'config':
      return 'fetch policies and the block list';
    case 'read':
      return 'read runs and policies';
    case 'manage':
      return "change its organisation's policies, keys and users";
    default:
      return 'administer the service (global block list, fleet alerts, tenants)';
  }
}

async function authenticate(ctx: ApiContext, request: FastifyRequest): Promise<Principal | null> {
  const key = bearer(request);
  if (key !== null) return key === '' ? null : ctx.store.authenticateApiKey(key);
  const token = readCookie(request, SESSION_COOKIE);
  if (token) return ctx.store.authenticateSession(token);
  return null;
}

