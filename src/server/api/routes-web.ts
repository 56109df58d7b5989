/** The web app's three files, served from memory with their content types. */
import type { FastifyInstance } from 'fastify';

export interface WebAssets {
  readonly html: string;
  readonly js: string;
  readonly css: string;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function registerWebRoutes(app: FastifyInstance, assets: WebAssets): void {
  app.get('/', async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(assets.html));
  app.get('/assets/app.js', async (_request, reply) =>
    reply.headers(SECURITY_HEADERS).type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(assets.js),
  );
  app.get('/assets/app.css', async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(assets.css));
}
