/** server: the insights API, its store and the web app. Other parts import only this file. */
export { describeDatabase, openStore, parseDatabaseSpec, redact, type DatabaseSpec, type OpenedStore } from './store/open-store.js';
export { MIGRATIONS, migrate, type Migration, type MigrationOutcome } from './store/migrations.js';
export { DEFAULT_STORE_OPTIONS, SqlStore, type StoreOptions } from './store/sql-store.js';
export type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from './store/driver.js';
export { SqliteDriver } from './store/sqlite-driver.js';
export { PostgresDriver } from './store/postgres-driver.js';
export * from './store/types.js';
