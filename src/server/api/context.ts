/** What every route module gets: the store, the options, the clock, and background work tracking. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RunwallError } from '../../protocol/index.js';
import type { CheckRunPoster } from '../github-checks.js';
import type { Capability, Principal, Store } from '../store/types.js';

export interface ApiOptions {
  /** Largest request body accepted, bytes. */
  readonly bodyLimit: number;
  /** Requests per minute per API key or session, counted in the database (shared by every server process). */
  readonly requestsPerMinute: number;
  /** Failed sign-ins / bad keys per minute per client address. */
  readonly authFailuresPerMinute: number;
  readonly sessionTtlMs: number;
  /** Set the Secure flag on the session cookie (when served over HTTPS). */
  readonly secureCookies: boolean;
}

export const DEFAULT_API_OPTIONS: ApiOptions = {
  bodyLimit: 32 * 1024 * 1024,
  requestsPerMinute: 6000,
  authFailuresPerMinute: 30,
  sessionTtlMs: 12 * 3600_000,
  secureCookies: false,
};

export interface ApiContext {
  readonly store: Store;
  readonly options: ApiOptions;
  readonly checks: CheckRunPoster | null;
  now(): number;
  /** Background work (GitHub check runs) that closing the server waits for. */
  track(work: Promise<unknown>): void;
}

/** Route config: which capability a route needs, or `public`. Routes without it are not API routes. */
export interface RouteAccess {
  readonly access?: Capability | 'public';
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    access?: Capability | 'public';
  }
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new RunwallError('RW_AUTH_REQUIRED', 'this endpoint needs an API key or a session');
  return request.principal;
}

export const SESSION_COOKIE = 'runwall_session';

export function readCookie(request: FastifyRequest, name: string): string | null {
  const header = request.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

export function setSessionCookie(reply: FastifyReply, token: string | null, options: ApiOptions): void {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(options.secureCookies ? ['Secure'] : [])];
  if (token === null) reply.header('set-cookie', `${SESSION_COOKIE}=; Max-Age=0; ${attributes.join('; ')}`);
  else reply.header('set-cookie', `${SESSION_COOKIE}=${token}; Max-Age=${Math.floor(options.sessionTtlMs / 1000)}; ${attributes.join('; ')}`);
}
