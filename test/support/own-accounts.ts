import type { DataSourceOptions } from 'typeorm';
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
