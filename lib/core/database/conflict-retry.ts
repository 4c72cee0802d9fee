import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Driver codes of a statement the database rolled back only because it collided with another
 * one: an InnoDB deadlock victim (MySQL/MariaDB), a PostgreSQL deadlock or serialization
 * failure, a busy SQLite file. Running the same statement again is the documented answer.
 */
const CONFLICT_CODES = new Set(['ER_LOCK_DEADLOCK', '40P01', '40001', 'SQLITE_BUSY']);
const CONFLICT_ERRNOS = new Set([1213]);

/** True when `error` is a conflict that a retry of the same statement can clear. */
export function isConflict(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { driverError, code, errno } = error as {
    driverError?: unknown;
    code?: unknown;
    errno?: unknown;
  };
  if (typeof code === 'string' && CONFLICT_CODES.has(code)) return true;
  if (typeof errno === 'number' && CONFLICT_ERRNOS.has(errno)) return true;
  return driverError !== undefined && driverError !== error && isConflict(driverError);
}

/**
 * Runs one autocommitted statement (or an idempotent step), again after a short random pause
 * when the database rolled it back as the loser of a conflict. Under a burst of racing
 * requests on MySQL/MariaDB, a range update and an insert into the same range can deadlock;
 * without a retry the loser would answer 503 although nothing was wrong.
 */
export async function retryOnConflict<T>(statement: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (attempt >= attempts || !isConflict(error)) throw error;
      await sleep(Math.floor(Math.random() * 10 * attempt) + 1);
    }
  }
}
