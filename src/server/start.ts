/** Starts the whole server: store (migrated), first-start bootstrap, API and web app on one port. */
import { RunwallError } from '../protocol/index.js';
import { buildApp } from './api/app.js';
import type { ApiOptions } from './api/context.js';
import { bootstrap, type FirstStart } from './bootstrap.js';
import type { GitHubAppConfig } from './github-checks.js';
import { describeDatabase, openStore, type DatabaseSpec } from './store/open-store.js';
import type { StoreOptions } from './store/sql-store.js';
import { loadWebAssets } from './web-assets.js';

export interface StartOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly database: DatabaseSpec;
  readonly github?: GitHubAppConfig | null;
  readonly api?: Partial<ApiOptions>;
  readonly store?: Partial<StoreOptions>;
  /** Serve the web app (default true). */
  readonly web?: boolean;
  readonly logger?: boolean;
}

export interface RunningServer {
  readonly url: string;
  readonly database: string;
  readonly schemaVersion: number;
  /** Set on the very first start of an empty database: the only time the first key and password are shown. */
  readonly firstStart: FirstStart | null;
  close(): Promise<void>;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const { store, migrations } = await openStore(options.database, options.store);
  let closeApp: (() => Promise<void>) | null = null;
  try {
    const firstStart = await bootstrap(store);
    const web = options.web === false ? null : await loadWebAssets();
    const { app } = await buildApp({ store, options: options.api ?? {}, github: options.github ?? null, web, logger: options.logger ?? false });
    closeApp = () => app.close();
    let address: string;
    try {
      address = await app.listen({ host: options.host, port: options.port });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new RunwallError('RW_SERVER_LISTEN_FAILED', `cannot listen on ${urlHost(options.host)}:${options.port}: ${message}`, {}, { cause: error });
    }
    const port = new URL(address).port;
    return {
      url: `http://${urlHost(options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host)}:${port}`,
      database: describeDatabase(options.database),
      schemaVersion: migrations.version,
      firstStart,
      async close() {
        await app.close();
        await store.close();
      },
    };
  } catch (error) {
    await closeApp?.().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
}
