// A throw-away PostgreSQL for a test file: scripts/pg-start.sh / pg-stop.sh, one cluster per caller.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts');

export interface TestPostgres {
  /** URL of the `runwall` database. */
  readonly url: string;
  /** A new empty database on the same cluster; returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const { stdout } = await run(resolve(SCRIPTS, 'pg-start.sh'), [], { timeout: 60_000 });
  const dir = /RUNWALL_PG_DIR=(\S+)/.exec(stdout)?.[1];
  const url = /RUNWALL_PG_URL=(\S+)/.exec(stdout)?.[1];
  if (!dir || !url) throw new Error(`pg-start.sh printed no cluster: ${stdout}`);
  return {
    url,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url.replace(/\/runwall$/, `/${name}`);
    },
    async stop(): Promise<void> {
      await run(resolve(SCRIPTS, 'pg-stop.sh'), [dir], { timeout: 60_000 });
    },
  };
}
