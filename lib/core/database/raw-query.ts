import type { DataSource } from 'typeorm';
import { dialectOf } from './dialect.js';

/** A row as a driver returns it: column alias → value. */
export type RawRow = Record<string, unknown>;

/**
 * Hand-written statements on the hot paths (a refresh, a login's rows, the first sight of a token). TypeORM's
 * `find` with relations costs about 250 µs of CPU per call on SQLite, the same query through
 * `query()` about 10 µs: on a path run thousands of times a second, that is the difference.
 * Statements are written with `?` placeholders and numbered for PostgreSQL; identifiers are
 * lower-case snake case, the same unquoted on every database. Values come back as the driver
 * gives them: read them with `num`, `bool` and `str`.
 */
export class RawQuery {
  private readonly numbered: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.numbered = dialectOf(dataSource) === 'postgres';
  }

  /** The rows of a SELECT. */
  async rows(sql: string, params: unknown[]): Promise<RawRow[]> {
    return (await this.dataSource.query(
      this.numbered ? numberPlaceholders(sql) : sql,
      params,
    )) as RawRow[];
  }

  /** Runs an INSERT, UPDATE or DELETE; returns the number of rows it changed. */
  async run(sql: string, params: unknown[]): Promise<number> {
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

  /** An identifier of the application's schema (a table or column name), quoted for the driver. */
  escape(name: string): string {
    return this.dataSource.driver.escape(name);
  }
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
