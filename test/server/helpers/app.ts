// A server app on a store, with the first operator and a helper to call it.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { bootstrap, buildApp, type AppConfig, type RunwallApp, type Store } from '../../../src/server/index.js';

export interface CallOptions {
  readonly key?: string | null;
  readonly body?: unknown;
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  readonly cookie?: string;
}

export interface TestApp extends RunwallApp {
  readonly operatorKey: string;
  readonly operatorPassword: string;
  call(method: InjectOptions['method'], url: string, options?: CallOptions): Promise<LightMyRequestResponse>;
  /** A new tenant with an admin key, an agent key and a member key. */
  tenant(slug: string): Promise<{ admin: string; agent: string; member: string }>;
}

export async function testApp(store: Store, config: Omit<AppConfig, 'store'> = {}): Promise<TestApp> {
  const first = await bootstrap(store);
  if (!first) throw new Error('testApp needs an empty store');
  const built = await buildApp({ store, ...config });
  const call = (method: InjectOptions['method'], url: string, options: CallOptions = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? first.apiKey : options.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (options.cookie) headers.cookie = options.cookie;
    let payload: string | undefined;
    if (options.raw !== undefined) payload = options.raw;
    else if (options.body !== undefined) payload = JSON.stringify(options.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    return built.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  };
  return {
    ...built,
    operatorKey: first.apiKey,
    operatorPassword: first.password,
    call,
    async tenant(slug: string) {
      const created = await call('POST', '/api/v1/tenants', { body: { slug, name: slug } });
      if (created.statusCode !== 201) throw new Error(`tenant ${slug}: ${created.body}`);
      const admin = (created.json() as { adminKey: { key: string } }).adminKey.key;
      const agent = (await call('POST', '/api/v1/keys', { key: admin, body: { role: 'agent', label: 'agent' } })).json() as { key: string };
      const member = (await call('POST', '/api/v1/keys', { key: admin, body: { role: 'member', label: 'member' } })).json() as { key: string };
      return { admin, agent: agent.key, member: member.key };
    },
  };
}
