import { QueryFailedError } from 'typeorm';
import { isConflict, retryOnConflict } from '../../lib/core/database/conflict-retry.js';

/** A driver error as TypeORM wraps it: the driver's own error sits in `driverError`. */
function failed(driverError: Record<string, unknown>): QueryFailedError {
  return new QueryFailedError('UPDATE …', [], Object.assign(new Error('driver'), driverError));
}

const deadlockMaria = () => failed({ code: 'ER_LOCK_DEADLOCK', errno: 1213 });
const deadlockPostgres = () => failed({ code: '40P01' });
const busySqlite = () => failed({ code: 'SQLITE_BUSY' });
const duplicate = () => failed({ code: 'ER_DUP_ENTRY', errno: 1062 });

describe('retryOnConflict', () => {
  it('knows a conflict of each database from any other failure', () => {
    expect(isConflict(deadlockMaria())).toBe(true);
    expect(isConflict(deadlockPostgres())).toBe(true);
    expect(isConflict(busySqlite())).toBe(true);
    expect(isConflict(failed({ errno: 1213 }))).toBe(true);
    expect(isConflict(duplicate())).toBe(false);
    expect(isConflict(failed({ code: '23505' }))).toBe(false);
    expect(isConflict(new Error('ECONNREFUSED'))).toBe(false);
    expect(isConflict(undefined)).toBe(false);
  });

  it('runs a statement again after a deadlock, and answers its result', async () => {
    const errors = [deadlockMaria(), deadlockPostgres()];
    let calls = 0;
    const result = await retryOnConflict(async () => {
      calls++;
      const error = errors.shift();
      if (error) throw error;
      return 'done';
    });
    expect(result).toBe('done');
    expect(calls).toBe(3);
  });

  it('passes any other error through at once', async () => {
    let calls = 0;
    const error = duplicate();
    await expect(
      retryOnConflict(async () => {
        calls++;
        throw error;
      }),
    ).rejects.toBe(error);
    expect(calls).toBe(1);
  });

  it('gives up after the given number of attempts', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls++;
        throw busySqlite();
      }, 3),
    ).rejects.toBeInstanceOf(QueryFailedError);
    expect(calls).toBe(3);
  });
});
