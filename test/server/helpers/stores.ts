// Opens a fresh store on either database for a test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type SqlStore, type StoreOptions } from '../../../src/server/index.js';
import type { TestPostgres } from './postgres.js';

export type Dialect = 'sqlite' | 'postgres';

let counter = 0;

export async function freshStore(
  dialect: Dialect,
  pg: TestPostgres | null,
  options: Partial<StoreOptions> = {},
): Promise<{ store: SqlStore; spec: string; cleanup: () => Promise<void> }> {
  counter++;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'runwall-sqlite-'));
    const path = join(dir, 'runwall.db');
    const { store } = await openStore({ kind: 'sqlite', path }, options);
    return {
      store,
      spec: `sqlite:${path}`,
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (!pg) throw new Error('postgres store needs a running cluster');
  const url = await pg.createDatabase(`t_${process.pid}_${counter}`);
  const { store } = await openStore({ kind: 'postgres', url }, options);
  return { store, spec: url, cleanup: () => store.close() };
}
