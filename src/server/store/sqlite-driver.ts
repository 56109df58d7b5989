/**
 * SQLite through better-sqlite3 (synchronous, one connection). Transactions
 * hold a lock so that concurrent requests, which interleave at `await`s,
 * never run a statement inside another request's transaction.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { RunwallError } from '../../protocol/index.js';
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from './driver.js';

type Statement = Database.Statement<SqlValue[]>;

class Lock {
  private tail: Promise<void> = Promise.resolve();
  private held = false;

  get busy(): boolean {
    return this.held;
  }

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    this.held = true;
    return () => {
      this.held = false;
      release();
    };
  }
}

function failed(error: unknown, sql: string): RunwallError {
  const message = error instanceof Error ? error.message : String(error);
  return new RunwallError('RW_DATABASE_FAILED', `sqlite: ${message}`, { sql: sql.slice(0, 200) }, { cause: error });
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Statement>();
  private readonly lock = new Lock();
  private readonly direct: SqlExecutor;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 10000');
      // Larger page cache: run pages read the events of one run, often repeatedly.
      this.db.pragma('cache_size = -65536');
    } catch (error) {
      throw failed(error, `open ${path}`);
    }
    this.direct = {
      all: async <T extends SqlRow>(sql: string, params: readonly SqlValue[] = []) => this.allNow<T>(sql, params),
      run: async (sql: string, params: readonly SqlValue[] = []) => this.runNow(sql, params),
      insertMany: async (table, columns, rows, conflict) => this.insertManyNow(table, columns, rows, conflict),
    };
  }

  private prepare(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      try {
        statement = this.db.prepare<SqlValue[]>(sql);
      } catch (error) {
        throw failed(error, sql);
      }
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private allNow<T extends SqlRow>(sql: string, params: readonly SqlValue[]): T[] {
    try {
      return this.prepare(sql).all(...params) as T[];
    } catch (error) {
      throw error instanceof RunwallError ? error : failed(error, sql);
    }
  }

  private runNow(sql: string, params: readonly SqlValue[]): number {
    try {
      return this.prepare(sql).run(...params).changes;
    } catch (error) {
      throw error instanceof RunwallError ? error : failed(error, sql);
    }
  }

  private insertManyNow(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], conflict: string): number[] {
    if (rows.length === 0) return [];
    const sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ON CONFLICT ${conflict} DO NOTHING`;
    const statement = this.prepare(sql);
    const added: number[] = [];
    try {
      for (let i = 0; i < rows.length; i++) {
        if (statement.run(...(rows[i] as SqlValue[])).changes > 0) added.push(i);
      }
    } catch (error) {
      throw failed(error, sql);
    }
    return added;
  }

  /** Outside a transaction a statement waits only while another caller holds one. */
  private async outside<T>(work: () => T): Promise<T> {
    if (!this.lock.busy) return work();
    const release = await this.lock.acquire();
    try {
      return work();
    } finally {
      release();
    }
  }

  all<T extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.outside(() => this.allNow<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.outside(() => this.runNow(sql, params));
  }

  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], conflict: string): Promise<number[]> {
    return this.outside(() => this.insertManyNow(table, columns, rows, conflict));
  }

  private async transactionWith<T>(begin: string, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const release = await this.lock.acquire();
    try {
      try {
        this.db.exec(begin);
      } catch (error) {
        throw failed(error, begin);
      }
      let result: T;
      try {
        result = await work(this.direct);
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
      try {
        this.db.exec('COMMIT');
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw failed(error, 'COMMIT');
      }
      return result;
    } finally {
      release();
    }
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    // IMMEDIATE takes the write lock up front: two processes on one file then wait, not deadlock.
    return this.transactionWith('BEGIN IMMEDIATE', work);
  }

  withMigrationLock<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transactionWith('BEGIN IMMEDIATE', work);
  }

  async script(sql: string): Promise<void> {
    try {
      this.db.exec(sql);
    } catch (error) {
      throw failed(error, sql);
    }
  }

  async close(): Promise<void> {
    const release = await this.lock.acquire();
    try {
      if (this.db.open) this.db.close();
    } finally {
      release();
    }
  }
}
