/**
 * LockoutService on each real database: the counted limit holds for bursts of concurrent
 * guesses (the places are taken in SQL before the slow work), a success never lifts a lock,
 * an unexpected error gives its place back uncounted, and lost places are reclaimed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createModuleFixture, type ModuleFixture } from '../../../test/support/module-fixture.js';
import { databases } from '../../../test/support/servers.js';
import { LoginAttempt } from './login-attempt.entity.js';
import { LockoutService, type GuessOutcome } from './lockout.service.js';
import { asHttpError } from '../../http/errors/error-mapping.js';

const MAX_ATTEMPTS = 3;
const LOCK_SECONDS = 2;

/** The HTTP status an error carries (the edge answers with it). */
function statusOf(error: unknown): number | undefined {
  const mapped = asHttpError(error) as { getStatus?: () => number };
  return mapped.getStatus?.();
}

/** Settles `promise` to its value or the status of its error. */
async function outcome<T>(promise: Promise<T>): Promise<T | number | undefined> {
  try {
    return await promise;
  } catch (error) {
    return statusOf(error);
  }
}

describe.each(databases())('LockoutService on %s', (kind) => {
  let fixture: ModuleFixture;
  let lockout: LockoutService;
  let evaluated: number;
  let name = 0;

  /** A guess that takes `ms` (like a password hash) and then fails or succeeds. */
  function guess(ok: boolean, ms = 40): () => Promise<GuessOutcome<string>> {
    return async () => {
      evaluated++;
      await sleep(ms);
      return ok ? { ok: true, value: 'welcome' } : { ok: false };
    };
  }

  beforeAll(async () => {
    fixture = await createModuleFixture(kind, {
      lockout: { maxAttempts: MAX_ATTEMPTS, seconds: LOCK_SECONDS },
    });
    lockout = fixture.get(LockoutService);
  });
  afterAll(() => fixture?.close());
  beforeEach(() => {
    evaluated = 0;
  });
  const fresh = () => `user-${kind}-${++name}`;

  it('evaluates at most maxAttempts of a burst of wrong guesses, and ends locked (10 rounds)', async () => {
    for (let round = 0; round < 10; round++) {
      evaluated = 0;
      const user = fresh();
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => outcome(lockout.attempt(user, guess(false)))),
      );
      expect(evaluated).toBeGreaterThan(0);
      expect(evaluated).toBeLessThanOrEqual(MAX_ATTEMPTS);
      expect(answers.filter((a) => a === 401).length).toBe(evaluated);
      expect(answers.filter((a) => a === 429).length).toBe(20 - evaluated);
      // The right guess now is refused without being evaluated.
      evaluated = 0;
      expect(await outcome(lockout.attempt(user, guess(true)))).toBe(429);
      expect(evaluated).toBe(0);
    }
  });

  it('never lets a success lift a lock that concurrent failures set (10 rounds)', async () => {
    for (let round = 0; round < 10; round++) {
      const user = fresh();
      const answers = await Promise.all([
        ...Array.from({ length: 9 }, () => outcome(lockout.attempt(user, guess(false)))),
        outcome(lockout.attempt(user, guess(true, 60))),
      ]);
      // A success forgets the failures before it (fewer than the limit): at most the limit
      // after it, so at most 2 × limit − 1 wrong guesses evaluated around one success.
      expect(answers.filter((a) => a === 401).length).toBeLessThanOrEqual(2 * MAX_ATTEMPTS - 1);
      expect(await outcome(lockout.attempt(user, guess(true)))).toBe(429);
    }
  });

  it('lets a burst of right guesses take turns: all succeed, nothing locks (10 rounds)', async () => {
    for (let round = 0; round < 10; round++) {
      evaluated = 0;
      const user = fresh();
      const answers = await Promise.all(
        Array.from({ length: 4 * MAX_ATTEMPTS }, () =>
          outcome(lockout.attempt(user, guess(true, 20))),
        ),
      );
      expect(answers).toEqual(answers.map(() => 'welcome'));
      expect(evaluated).toBe(4 * MAX_ATTEMPTS);
      expect(await outcome(lockout.attempt(user, guess(false, 0)))).toBe(401);
      expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
    }
  });

  it('forgets the failures before a success, but counts the ones after', async () => {
    const user = fresh();
    for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
      expect(await outcome(lockout.attempt(user, guess(false, 0)))).toBe(401);
    }
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
    for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
      expect(await outcome(lockout.attempt(user, guess(false, 0)))).toBe(401);
    }
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
  });

  it('gives the place of a guess that failed unexpectedly back, uncounted', async () => {
    const user = fresh();
    const broken = async (): Promise<GuessOutcome<string>> => {
      throw new Error('database went away');
    };
    for (let i = 0; i < MAX_ATTEMPTS * 2; i++) {
      await expect(lockout.attempt(user, broken)).rejects.toThrow('database went away');
    }
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
  });

  it('lifts a lock after lockout.seconds, and attempts during the lock do not extend it', async () => {
    const user = fresh();
    for (let i = 0; i < MAX_ATTEMPTS; i++) await outcome(lockout.attempt(user, guess(false, 0)));
    await sleep(LOCK_SECONDS * 500);
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe(429);
    await sleep(LOCK_SECONDS * 500 + 200);
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
  });

  it('reclaims places held for over a minute (an instance that crashed mid-guess)', async () => {
    const user = fresh();
    expect(await outcome(lockout.attempt(user, guess(false, 0)))).toBe(401);
    const key = lockout.keyOf(user);
    await fixture.dataSource
      .getRepository(LoginAttempt)
      .update(
        { usernameHash: key },
        { inFlight: MAX_ATTEMPTS, inFlightSince: Date.now() - 61_000 },
      );
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe('welcome');
    // Held places younger than a minute are not reclaimed.
    await fixture.dataSource
      .getRepository(LoginAttempt)
      .update({ usernameHash: key }, { inFlight: MAX_ATTEMPTS, inFlightSince: Date.now() - 1_000 });
    expect(await outcome(lockout.attempt(user, guess(true, 0)))).toBe(429);
  });

  it('emits account.locked once per lock, with the keyed name and no username', async () => {
    const user = fresh();
    const before = fixture.events.length;
    await Promise.all(
      Array.from({ length: 8 }, () => outcome(lockout.attempt(user, guess(false, 5)))),
    );
    const locks = fixture.events.slice(before).filter((e) => e.name === 'account.locked');
    expect(locks).toEqual([
      expect.objectContaining({ usernameHash: lockout.keyOf(user), seconds: LOCK_SECONDS }),
    ]);
    expect(JSON.stringify(fixture.events)).not.toContain(user);
  });

  it('forgets a name on request and prunes idle rows only', async () => {
    const kept = fresh();
    const forgotten = fresh();
    await outcome(lockout.attempt(kept, guess(false, 0)));
    await outcome(lockout.attempt(forgotten, guess(false, 0)));
    await lockout.forget(forgotten);
    const keys = async () =>
      (
        await fixture.dataSource.query<Array<{ username_hash: string }>>(
          'SELECT username_hash FROM tfa_login_attempts',
        )
      ).map((r) => r.username_hash);
    expect(await keys()).toContain(lockout.keyOf(kept));
    expect(await keys()).not.toContain(lockout.keyOf(forgotten));
    await lockout.prune(60_000);
    expect(await keys()).toContain(lockout.keyOf(kept));
    await sleep(20);
    await lockout.prune(10);
    expect(await keys()).not.toContain(lockout.keyOf(kept));
  });
});
