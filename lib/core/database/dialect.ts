import {
  TableForeignKey,
  type DataSource,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';

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

type Extra = Partial<TableColumnOptions>;

/**
 * Column builders of the migrations, typed for the dialect of `queryRunner`: native `uuid` on
 * PostgreSQL, `varchar(36)` elsewhere; instants as `bigint` epoch values everywhere.
 */
export function columnsFor(queryRunner: QueryRunner) {
  const dialect = dialectOf(queryRunner);
  const postgres = dialect === 'postgres';
  return {
    /**
     * A string compared byte for byte: MySQL/MariaDB's default collation ignores case and
     * accents, which would make "zoë" and "zoe" one username.
     */
    exactVarchar: (name: string, length: number, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: 'varchar',
      length: String(length),
      ...(dialect === 'mysql' ? { charset: 'utf8mb4', collation: 'utf8mb4_bin' } : {}),
      ...extra,
    }),
    uuid: (name: string, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: postgres ? 'uuid' : 'varchar',
      length: postgres ? undefined : '36',
      ...extra,
    }),
    varchar: (name: string, length: number, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: 'varchar',
      length: String(length),
      ...extra,
    }),
    bigint: (name: string, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: 'bigint',
      ...extra,
    }),
    int: (name: string, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: 'integer',
      ...extra,
    }),
    bool: (name: string, extra: Extra = {}): TableColumnOptions => ({
      name,
      type: 'boolean',
      ...extra,
    }),
  };
}

/** The foreign key from `table.account_id` to `tfa_accounts.id`, deleted with the account. */
export function accountForeignKey(table: string): TableForeignKey {
  return new TableForeignKey({
    name: `FK_${table}_account`,
    columnNames: ['account_id'],
    referencedTableName: 'tfa_accounts',
    referencedColumnNames: ['id'],
    onDelete: 'CASCADE',
  });
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

/**
 * SQL for the database server's clock, in epoch milliseconds. Revocations are stamped with it
 * and the instances' cursors read it, so that no instance's own clock decides what the others
 * see (one clock, the database's, orders every revocation).
 */
export function databaseClockSql(dialect: Dialect): string {
  switch (dialect) {
    case 'sqlite':
      return "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
    case 'postgres':
      return '(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint';
    case 'mysql':
      return 'CAST(UNIX_TIMESTAMP(SYSDATE(3)) * 1000 AS SIGNED)';
  }
}
