/**
 * The thin I/O layer under the store: one small interface, one implementation
 * per database. SQL is written once with `?` placeholders; the PostgreSQL
 * driver numbers them. Every value crossing this interface is a plain number,
 * string or null (times are epoch milliseconds, JSON is text, booleans 0/1),
 * so both databases return the same rows.
 */
export type SqlValue = string | number | null;
export type SqlRow = Record<string, SqlValue>;

export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  /** Rows of a SELECT (or of a statement with RETURNING). */
  all<T extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Number of rows a write changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Inserts many rows with `ON CONFLICT DO NOTHING`; resolves to the indexes
   * (into `rows`) of the rows that were new, so the caller can count what a
   * retried upload really added.
   */
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], conflict: string): Promise<number[]>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: Dialect;
  /** Runs `work` in one transaction; other callers wait (SQLite) or use other connections (PostgreSQL). */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs a multi-statement DDL script (migrations). */
  script(sql: string, tx?: SqlExecutor): Promise<void>;
  /** Serialises migrations across processes sharing the database. */
  withMigrationLock<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
