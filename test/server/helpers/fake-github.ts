// A local server that speaks the part of the GitHub API a check run needs, checking the App's JWT like GitHub does.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string;
  readonly body: Record<string, unknown> | null;
}

export interface FakeGitHub {
  readonly url: string;
  readonly appId: string;
  readonly privateKey: string;
  readonly requests: RecordedRequest[];
  /** Check runs created, in order. */
  readonly checkRuns: Record<string, unknown>[];
  /** Make the next check-run creations fail with this status. */
  failChecksWith(status: number | null): void;
  close(): Promise<void>;
}

const INSTALLATION = 77;
const TOKEN = 'ghs_fake_installation_token';

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const appId = '4242';
  const requests: RecordedRequest[] = [];
  const checkRuns: Record<string, unknown>[] = [];
  let failStatus: number | null = null;

  const validJwt = (authorization: string): boolean => {
    const token = /^bearer (.+)$/i.exec(authorization)?.[1];
    const [header, payload, signature] = token?.split('.') ?? [];
    if (!header || !payload || !signature) return false;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${header}.${payload}`);
    if (!verifier.verify(publicKey, Buffer.from(signature, 'base64url'))) return false;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss: string; exp: number; iat: number };
    const now = Math.floor(Date.now() / 1000);
    return claims.iss === appId && claims.exp > now && claims.iat <= now && claims.exp - claims.iat <= 600;
  };

  const server: Server = createServer(async (request, response) => {
    const text = await readBody(request);
    const path = (request.url ?? '').split('?')[0] ?? '';
    const authorization = String(request.headers.authorization ?? '');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    requests.push({ method: request.method ?? '', path, authorization, body });
    const send = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(value));
    };
    let match: RegExpExecArray | null;
    if (request.method === 'GET' && (match = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path))) {
      if (!validJwt(authorization)) return send(401, { message: 'A JSON web token could not be decoded' });
      return send(200, { id: INSTALLATION, account: { login: match[1] } });
    }
    if (request.method === 'POST' && path === `/app/installations/${INSTALLATION}/access_tokens`) {
      if (!validJwt(authorization)) return send(401, { message: 'A JSON web token could not be decoded' });
      return send(201, { token: TOKEN, expires_at: new Date(Date.now() + 3600_000).toISOString() });
    }
    if (request.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/check-runs$/.test(path)) {
      if (authorization !== `token ${TOKEN}`) return send(401, { message: 'Bad credentials' });
      if (failStatus !== null) return send(failStatus, { message: 'Server Error' });
      if (!body?.name || !body.head_sha) return send(422, { message: 'Validation Failed' });
      checkRuns.push(body);
      return send(201, { id: 555 + checkRuns.length - 1, ...body });
    }
    return send(404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    appId,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    requests,
    checkRuns,
    failChecksWith(status) {
      failStatus = status;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
