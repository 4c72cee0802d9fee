import type { DataSource, QueryRunner } from 'typeorm';

/** The database families the module supports. Every dialect difference lives in this file. */
export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export function dialectOf(source: DataSource | QueryRunner): Dialect {
  const type = 'connection' in source ? source.connection.options.type : source.options.type;
  switch (type) {
    case 'better-sqlite3':
    case 'sqljs':
      return 'sqlite';
    case 'postgres':
      return 'postgres';
    case 'mysql':
    case 'mariadb':
      return 'mysql';
    default:
      throw new Error(
        `nestjs-rest-2fa supports SQLite (better-sqlite3), PostgreSQL and MySQL/MariaDB; this DataSource is "${String(type)}".`,
      );
  }
}

/** Column types of the migrations, per dialect. */
export function columnTypes(dialect: Dialect) {
  return {
    uuid: dialect === 'postgres' ? 'uuid' : 'varchar',
    uuidLength: dialect === 'postgres' ? undefined : '36',
    bool: 'boolean',
    int: 'integer',
    bigint: 'bigint',
    varchar: 'varchar',
  } as const;
}

/**
 * True when `error` is a unique-constraint violation, on any supported driver, so that a
 * race on a unique value ends as a clean conflict and never as a 500.
 */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown; driverError?: { code?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  return (
    code === '23505' || // PostgreSQL unique_violation
    code === 'ER_DUP_ENTRY' || // MySQL / MariaDB
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
