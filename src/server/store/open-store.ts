/** Chooses the database from a `--database` value and opens the store on it. */
import { resolve } from 'node:path';
import { RunwallError } from '../../protocol/index.js';
import type { SqlDriver } from './driver.js';
import type { MigrationOutcome } from './migrations.js';
import { PostgresDriver } from './postgres-driver.js';
import { SqliteDriver } from './sqlite-driver.js';
import { SqlStore, type StoreOptions } from './sql-store.js';

export type DatabaseSpec = { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };

/** `sqlite:PATH`, `sqlite::memory:`, `postgres://…` or `postgresql://…`; anything else is an error, never a default. */
export function parseDatabaseSpec(text: string): DatabaseSpec {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length);
    if (path === '') throw new RunwallError('RW_USAGE', "--database sqlite: needs a file path, e.g. 'sqlite:./.runwall/runwall.db'");
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  if (/^postgres(ql)?:\/\//.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new RunwallError('RW_USAGE', `--database '${redact(text)}' is not a valid PostgreSQL URL`);
    }
    return { kind: 'postgres', url: text };
  }
  throw new RunwallError('RW_USAGE', `--database '${redact(text)}' must start with 'sqlite:' or 'postgres://'`);
}

/** The URL without its password, for messages and logs. */
export function redact(text: string): string {
  return text.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

export function describeDatabase(spec: DatabaseSpec): string {
  return spec.kind === 'sqlite' ? `sqlite:${spec.path}` : redact(spec.url);
}

export interface OpenedStore {
  readonly store: SqlStore;
  readonly migrations: MigrationOutcome;
}

export async function openStore(spec: DatabaseSpec, options: Partial<StoreOptions> = {}): Promise<OpenedStore> {
  const driver: SqlDriver = spec.kind === 'sqlite' ? new SqliteDriver(spec.path) : new PostgresDriver(spec.url);
  try {
    return await SqlStore.open(driver, options);
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
}
