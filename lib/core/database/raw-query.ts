import { QueryFailedError, type DataSource } from 'typeorm';
import { retryOnConflict } from './conflict-retry.js';
import { dialectOf } from './dialect.js';

/** A row as a driver returns it: column alias → value. */
export type RawRow = Record<string, unknown>;

/** One write of a `chain`: its SQL, its values and how many rows it must change to go on. */
export interface ChainedWrite {
  sql: string;
  params: unknown[];
  /** Stop the chain (and write nothing after it) unless this statement changed `need` rows. */
  need?: number;
}

/** The part of a better-sqlite3 `Database` and `Statement` that `RawQuery` uses. */
interface SqliteStatement {
  readonly reader: boolean;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}
interface SqliteDatabase {
  readonly open: boolean;
  prepare(sql: string): SqliteStatement;
  transaction<T>(fn: () => T): { immediate(): T };
}

/** Prepared statements per better-sqlite3 connection (a reconnected DataSource starts anew). */
const statementCaches = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();
/** The hot paths use a few dozen statements; the cap only guards against misuse. */
const STATEMENT_CACHE_SIZE = 200;

/**
 * Hand-written statements on the hot paths (a refresh, a login's rows, the first sight of a token). TypeORM's
 * `find` with relations costs about 250 µs of CPU per call on SQLite, the same query through
 * `query()` about 10 µs: on a path run thousands of times a second, that is the difference.
 * Statements are written with `?` placeholders and numbered for PostgreSQL; identifiers are
 * lower-case snake case, the same unquoted on every database. Values come back as the driver
 * gives them: read them with `num`, `bool` and `str`.
 *
 * On better-sqlite3 the statements run on TypeORM's own connection but without a query runner
 * per call: each is prepared once per connection and kept (TypeORM prepares it again for every
 * runner), and they are logged through TypeORM's logger only when `logging` is on. Errors are
 * TypeORM's `QueryFailedError`, as through `query()`.
 */
export class RawQuery {
  private readonly numbered: boolean;
  private readonly sqlite: boolean;

  constructor(private readonly dataSource: DataSource) {
    const dialect = dialectOf(dataSource);
    this.numbered = dialect === 'postgres';
    this.sqlite = dataSource.options.type === 'better-sqlite3';
  }

  /** The rows of a SELECT. */
  async rows(sql: string, params: unknown[]): Promise<RawRow[]> {
    const db = this.connection();
    if (db) return this.direct(db, sql, params, (stmt, values) => stmt.all(...values) as RawRow[]);
    return (await this.dataSource.query(
      this.numbered ? numberPlaceholders(sql) : sql,
      params,
    )) as RawRow[];
  }

  /** Runs an INSERT, UPDATE or DELETE; returns the number of rows it changed. */
  async run(sql: string, params: unknown[]): Promise<number> {
    const db = this.connection();
    if (db) return this.direct(db, sql, params, (stmt, values) => stmt.run(...values).changes);
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(
        this.numbered ? numberPlaceholders(sql) : sql,
        params,
        true,
      );
      return result.affected ?? 0;
    } finally {
      await runner.release();
    }
  }

  /** The first row of a SELECT, or `null`. */
  async row(sql: string, params: unknown[]): Promise<RawRow | null> {
    return (await this.rows(sql, params))[0] ?? null;
  }

  /**
   * Runs `writes` in order, each retried on a conflict, and stops after one that did not change
   * its `need` rows; returns the rows each statement that ran changed. On SQLite they are one
   * transaction (`BEGIN IMMEDIATE`): one commit, so one sync of the file instead of one per
   * statement, and all or nothing. On the servers each commits by itself, as `run` does: a
   * caller must already be right with any prefix of the chain written alone.
   */
  async chain(writes: readonly ChainedWrite[]): Promise<number[]> {
    const db = this.connection();
    if (db) {
      const run = (write: ChainedWrite) =>
        this.direct(db, write.sql, write.params, (stmt, values) => stmt.run(...values).changes);
      const transaction = db.transaction(() => {
        const changed: number[] = [];
        for (const write of writes) {
          const n = run(write);
          changed.push(n);
          if (write.need !== undefined && n !== write.need) break;
        }
        return changed;
      });
      return retryOnConflict(async () => {
        try {
          return transaction.immediate();
        } catch (error) {
          // BEGIN itself failed (a busy file): as a statement would.
          throw error instanceof QueryFailedError
            ? error
            : new QueryFailedError('BEGIN IMMEDIATE', [], error as Error);
        }
      });
    }
    const changed: number[] = [];
    for (const write of writes) {
      const n = await retryOnConflict(() => this.run(write.sql, write.params));
      changed.push(n);
      if (write.need !== undefined && n !== write.need) break;
    }
    return changed;
  }

  /** An identifier of the application's schema (a table or column name), quoted for the driver. */
  escape(name: string): string {
    return this.dataSource.driver.escape(name);
  }

  /** TypeORM's open better-sqlite3 connection, when that is the driver. */
  private connection(): SqliteDatabase | null {
    if (!this.sqlite) return null;
    const db = (this.dataSource.driver as unknown as { databaseConnection?: SqliteDatabase })
      .databaseConnection;
    return db?.open ? db : null;
  }

  private statement(db: SqliteDatabase, sql: string): SqliteStatement {
    let cache = statementCaches.get(db);
    if (!cache) statementCaches.set(db, (cache = new Map()));
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    }
    return stmt;
  }

  /** Runs one statement as TypeORM's runner would: logged, its error a `QueryFailedError`. */
  private direct<T>(
    db: SqliteDatabase,
    sql: string,
    params: unknown[],
    execute: (stmt: SqliteStatement, values: unknown[]) => T,
  ): T {
    const values = bindable(params);
    const logging = this.dataSource.options.logging;
    if (logging) this.dataSource.logger.logQuery(sql, values);
    try {
      return execute(this.statement(db, sql), values);
    } catch (error) {
      if (logging) this.dataSource.logger.logQueryError(error as Error, sql, values);
      throw new QueryFailedError(sql, values, error as Error);
    }
  }
}

/** better-sqlite3 binds no booleans: 1 and 0, as TypeORM passes them. */
function bindable(params: unknown[]): unknown[] {
  return params.some((p) => typeof p === 'boolean')
    ? params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p))
    : params;
}

function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A BIGINT or INTEGER column (drivers return BIGINT as a string). */
export function num(value: unknown): number {
  return Number(value);
}

/**
 * A BOOLEAN column: `true`/`false` on PostgreSQL, `1`/`0` elsewhere, read as TypeORM reads it
 * (anything but false, 0 and NULL is true), so that a flag written as 2 or -1 by another tool
 * means the same on the hot paths as at login.
 */
export function bool(value: unknown): boolean {
  return value !== null && value !== undefined && value !== false && Number(value) !== 0;
}

/** A string column, or an id of any type in its string form; `null` stays `null`. */
export function str(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
