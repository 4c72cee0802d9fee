import type { DataSource, DataSourceOptions } from 'typeorm';
import type { DatabaseKind } from './servers.js';

/**
 * DataSource options an application would write for a test database URL. MariaDB is driven
 * as `mariadb`: with `mysql`, TypeORM misreads MariaDB's column defaults and reports drift in
 * every nullable column of any entity.
 */
export function dataSourceOptionsFor(kind: DatabaseKind, url: string): DataSourceOptions {
  if (kind === 'sqlite') return { type: 'better-sqlite3', database: url.slice('sqlite:'.length) };
  return kind === 'postgres' ? { type: 'postgres', url } : { type: 'mariadb', url };
}

/** The module's tables keyed by `account_id` beside an application's own users table. */
export const ACCOUNT_TABLES = [
  'tfa_account_states',
  'tfa_secret_keys',
  'tfa_issued_tokens',
  'tfa_token_families',
  'tfa_totp_credentials',
  'tfa_recovery_codes',
] as const;

export type AccountTable = (typeof ACCOUNT_TABLES)[number];

/** How many rows each of the module's per-account tables holds for `accountId`. */
export async function moduleRowsOf(
  dataSource: DataSource,
  accountId: string | number,
): Promise<Record<AccountTable, number>> {
  const counts = {} as Record<AccountTable, number>;
  for (const table of ACCOUNT_TABLES) {
    const row = await dataSource
      .createQueryBuilder()
      .select('COUNT(*)', 'n')
      .from(table, 't')
      .where('t.account_id = :accountId', { accountId })
      .getRawOne<{ n: string | number }>();
    counts[table] = Number(row?.n);
  }
  return counts;
}
