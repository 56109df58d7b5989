/**
 * PostgreSQL through `pg` (a pool). Placeholders `?` become `$1..$n`; BIGINT
 * comes back as a number (epoch milliseconds and counters stay far below 2^53).
 */
import pg from 'pg';
import { RunwallError } from '../../protocol/index.js';
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from './driver.js';

const INT8_OID = 20;
const NUMERIC_OID = 1700;
const types = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    // `format` is 'text' or 'binary' in pg's own typing; passing it through keeps its defaults.
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** `?` to `$n`. Our SQL never has `?` inside string literals. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function failed(error: unknown, sql: string): RunwallError {
  const message = error instanceof Error ? error.message : String(error);
  return new RunwallError('RW_DATABASE_FAILED', `postgres: ${message}`, { sql: sql.slice(0, 200) }, { cause: error });
}

type Queryable = pg.Pool | pg.PoolClient;

function executor(client: Queryable): SqlExecutor {
  const sqlCache = new Map<string, string>();
  const numbered = (sql: string): string => {
    let out = sqlCache.get(sql);
    if (out === undefined) {
      out = numberPlaceholders(sql);
      if (sqlCache.size < 1000) sqlCache.set(sql, out);
    }
    return out;
  };
  return {
    async all<T extends SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
      try {
        const result = await client.query(numbered(sql), params as SqlValue[]);
        return result.rows as T[];
      } catch (error) {
        throw failed(error, sql);
      }
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
      try {
        const result = await client.query(numbered(sql), params as SqlValue[]);
        return result.rowCount ?? 0;
      } catch (error) {
        throw failed(error, sql);
      }
    },
    async insertMany(table, columns, rows, conflict): Promise<number[]> {
      if (rows.length === 0) return [];
      // One array parameter per column (unnest): the statement stays the same size whatever the row count,
      // which parses and binds far faster than a VALUES list with thousands of parameters.
      const types = columns.map((_, c) => (rows.some((row) => typeof row[c] === 'string') ? 'text' : 'bigint'));
      const arrays = columns.map((_, c) => rows.map((row) => row[c] ?? null));
      const keyColumns = conflictColumns(conflict);
      const sql = `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
        ON CONFLICT ${conflict} DO NOTHING RETURNING ${keyColumns.join(', ')}`;
      try {
        const result = await client.query(sql, arrays);
        const indexes = keyColumns.map((name) => columns.indexOf(name));
        const inserted = new Set(result.rows.map((r: Record<string, unknown>) => keyColumns.map((c) => String(r[c])).join('\u0000')));
        const added: number[] = [];
        rows.forEach((row, i) => {
          if (inserted.has(indexes.map((k) => String(row[k])).join('\u0000'))) added.push(i);
        });
        return added;
      } catch (error) {
        throw failed(error, sql);
      }
    },
  };
}

function conflictColumns(conflict: string): string[] {
  const inner = /^\(([^)]*)\)$/.exec(conflict.trim());
  if (!inner?.[1]) throw new RunwallError('RW_INTERNAL', `insertMany needs a conflict target like (a, b), got ${conflict}`);
  return inner[1].split(',').map((c) => c.trim());
}

function conflictKey(conflict: string): string {
  return conflictColumns(conflict).join(', ');
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly direct: SqlExecutor;

  constructor(url: string, poolSize = 10) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize, types });
    // An idle client that loses its connection must not crash the server.
    this.pool.on('error', () => undefined);
    this.direct = executor(this.pool);
  }

  all<T extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.direct.all<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], conflict: string): Promise<number[]> {
    return this.direct.insertMany(table, columns, rows, conflict);
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw failed(error, 'connect');
    }
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      try {
        const result = await work(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } catch (error) {
      throw error instanceof RunwallError ? error : failed(error, 'transaction');
    } finally {
      client.release();
    }
  }

  async withMigrationLock<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transaction(async (tx) => {
      // One key for runwall's migrations: a second server starting at once waits here.
      await tx.run('SELECT pg_advisory_xact_lock(7262787701)');
      return work(tx);
    });
  }

  async script(sql: string, tx?: SqlExecutor): Promise<void> {
    // Scripts have no placeholders: run them as one simple query.
    const target = tx ?? this.direct;
    await target.run(sql);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
