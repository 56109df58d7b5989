/** server: the insights API, its store and the web app. Other parts import only this file. */
export { describeDatabase, openStore, parseDatabaseSpec, redact, type DatabaseSpec, type OpenedStore } from './store/open-store.js';
export { MIGRATIONS, migrate, type Migration, type MigrationOutcome } from './store/migrations.js';
export { DEFAULT_STORE_OPTIONS, SqlStore, type StoreOptions } from './store/sql-store.js';
export type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from './store/driver.js';
export { SqliteDriver } from './store/sqlite-driver.js';
export { PostgresDriver } from './store/postgres-driver.js';
export * from './store/types.js';
export { buildApp, type AppConfig, type RouteInfo, type RunwallApp } from './api/app.js';
export { DEFAULT_API_OPTIONS, type ApiOptions } from './api/context.js';
export type { WebAssets } from './api/routes-web.js';
export { bootstrap, FIRST_EMAIL, FIRST_TENANT, type FirstStart } from './bootstrap.js';
export { CheckRunPoster, appJwt, checkOutput, conclusionOf, type GitHubAppConfig } from './github-checks.js';
export { buildNetworkTree, buildProcessTree, diffEndpoints, type NetworkTree, type ProcessTree } from './views.js';
export { replayEvents, recommendFromEvents, compileCandidate } from './advice.js';
export { loadWebAssets } from './web-assets.js';
export { startServer, type RunningServer, type StartOptions } from './start.js';
