import { Column, type ColumnOptions, type ValueTransformer } from 'typeorm';

/**
 * Instants are stored as UTC epoch milliseconds (or seconds, for JWT claims) in BIGINT on
 * every database: one type and one comparison on SQLite, PostgreSQL and MySQL/MariaDB, immune
 * to server and session time zones. Drivers hand BIGINT back as strings; this turns them
 * back into numbers (safe: epoch milliseconds stay far below 2^53).
 */
const bigintNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

export function InstantColumn(options: Omit<ColumnOptions, 'type' | 'transformer'> = {}) {
  return Column({ type: 'bigint', transformer: bigintNumber, ...options });
}
