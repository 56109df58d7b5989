/** The web app's files, served from memory with their content types. */
import type { FastifyInstance } from 'fastify';

export interface WebAssets {
  readonly html: string;
  readonly css: string;
  /** Browser modules by file name (`main.js` is the entry). */
  readonly files: ReadonlyMap<string, string>;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function registerWebRoutes(app: FastifyInstance, assets: WebAssets): void {
  app.get('/', async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(assets.html));
  app.get('/assets/app.css', async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(assets.css));
  app.get<{ Params: { file: string } }>('/assets/web/:file', async (request, reply) => {
    const body = assets.files.get(request.params.file);
    if (body === undefined) return reply.code(404).type('text/plain').send('not found');
    const type = request.params.file.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8';
    return reply.headers(SECURITY_HEADERS).type(type).header('cache-control', 'no-cache').send(body);
  });
  // Browsers ask for it on every page; there is none.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
}
