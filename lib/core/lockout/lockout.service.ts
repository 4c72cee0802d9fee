import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { IdentifierHasher } from '../identifiers/identifier-hasher.service.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { AuditEvents } from '../events/audit-events.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { LoginAttempt } from './login-attempt.entity.js';
import { retryOnConflict } from '../database/conflict-retry.js';
import { InvalidCredentialsError, LockedError } from '../errors.js';

/** Longest a guess may hold its place; a place held longer is presumed lost (a crash). */
const IN_FLIGHT_LIMIT_MS = 60_000;

/** What one evaluated guess found. */
export type GuessOutcome<T> = { ok: true; value: T } | { ok: false };

/**
 * Per-username lockout, persisted in the database so that it survives restarts and is shared
 * by every instance. It counts by the keyed hash of the normalised username whether or not the
 * account exists, so a lock (a 429) says nothing about which usernames are real.
 *
 * Every check of a password, secret key, TOTP code or recovery code runs through `attempt()`:
 * the guess takes a place *before* the slow work (hashing) and gives it back after, in atomic
 * SQL, so that completed failures plus guesses in flight never exceed `maxAttempts`, whatever
 * the concurrency and however many instances. A guess refused because every place is taken
 * counts as a failure: a burst of wrong guesses always ends in a lock. A success forgets the
 * failures before it but never lifts a lock set meanwhile. A lock lasts `lockout.seconds` and is
 * never extended while it holds.
 */
@Injectable()
export class LockoutService {
  constructor(
    @InjectRepository(LoginAttempt) private readonly attempts: Repository<LoginAttempt>,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly identifiers: IdentifierHasher,
    private readonly events: AuditEvents,
  ) {}

  /** The keyed hash under which `usernameKey` is counted (also used in audit events). */
  keyOf(usernameKey: string): string {
    return this.identifiers.hash(usernameKey);
  }

  /**
   * Evaluates one guess for `usernameKey` as a counted attempt.
   * @returns the value of a successful guess.
   * @throws LockedError when the username is locked or every place is taken;
   *         InvalidCredentialsError (the one login failure) when the guess is wrong.
   */
  async attempt<T>(usernameKey: string, evaluate: () => Promise<GuessOutcome<T>>): Promise<T> {
    const lockout = this.options.lockout;
    if (!lockout) {
      const outcome = await evaluate();
      if (!outcome.ok) throw new InvalidCredentialsError();
      return outcome.value;
    }
    const usernameHash = this.keyOf(usernameKey);
    if (!(await this.reserve(usernameHash))) throw await this.refuse(usernameHash);
    let outcome: GuessOutcome<T>;
    try {
      outcome = await evaluate();
    } catch (error) {
      // Nothing was decided (a database error, say): give the place back uncounted.
      await this.release(usernameHash, 'uncounted').catch(() => undefined);
      throw error;
    }
    if (outcome.ok) {
      await this.release(usernameHash, 'success');
      return outcome.value;
    }
    await this.release(usernameHash, 'failure');
    await this.lockIfDue(usernameHash);
    throw new InvalidCredentialsError();
  }

  /** Deletes the counters of usernames idle for longer than `graceMs`. */
  async prune(graceMs: number): Promise<void> {
    const idle = Date.now() - graceMs;
    await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .delete()
        .where('locked_until < :idle AND window_start < :idle AND in_flight_since < :idle', {
          idle,
        })
        .execute(),
    );
  }

  /** Forgets every counter of a username (its account was deleted). */
  async forget(usernameKey: string): Promise<void> {
    await this.attempts.delete({ usernameHash: this.keyOf(usernameKey) });
  }

  /** Takes a place for one guess; false when locked or every place is taken. */
  private async reserve(usernameHash: string): Promise<boolean> {
    const { maxAttempts, seconds } = this.options.lockout || { maxAttempts: 0, seconds: 0 };
    const now = Date.now();
    await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .insert()
        .values({
          usernameHash,
          failures: 0,
          windowStart: 0,
          lockedUntil: 0,
          inFlight: 0,
          inFlightSince: 0,
        })
        .orIgnore()
        .execute(),
    );
    // Failures older than one lockout period no longer count; places held for a minute were lost.
    await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .update()
        .set({
          failures: () => 'CASE WHEN window_start < :stale THEN 0 ELSE failures END',
          inFlight: () => 'CASE WHEN in_flight_since < :lost THEN 0 ELSE in_flight END',
        })
        .where(
          'username_hash = :usernameHash AND locked_until <= :now AND ' +
            '((failures > 0 AND window_start < :stale) OR (in_flight > 0 AND in_flight_since < :lost))',
        )
        .setParameters({
          usernameHash,
          now,
          stale: now - seconds * 1000,
          lost: now - IN_FLIGHT_LIMIT_MS,
        })
        .execute(),
    );
    const reserved = await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .update()
        .set({ inFlight: () => 'in_flight + 1', inFlightSince: now })
        .where(
          'username_hash = :usernameHash AND locked_until <= :now AND failures + in_flight < :max',
        )
        .setParameters({ usernameHash, now, max: maxAttempts })
        .execute(),
    );
    return (reserved.affected ?? 0) === 1;
  }

  /** A guess refused unevaluated: it counts as a failure (unless locked), then 429. */
  private async refuse(usernameHash: string): Promise<LockedError> {
    const now = Date.now();
    await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .update()
        .set({
          // Listed before `failures`: MySQL evaluates SET clauses left to right.
          windowStart: () => 'CASE WHEN failures = 0 THEN :now ELSE window_start END',
          failures: () => 'failures + 1',
        })
        .where('username_hash = :usernameHash AND locked_until <= :now')
        .setParameters({ usernameHash, now })
        .execute(),
    );
    await this.lockIfDue(usernameHash);
    const row = await this.attempts.findOne({ where: { usernameHash } });
    const lockedFor = row && row.lockedUntil > now ? Math.ceil((row.lockedUntil - now) / 1000) : 1;
    this.events.emit('login.failed', { usernameHash, accountId: null, reason: 'locked' });
    return new LockedError(lockedFor);
  }

  /** Gives a place back, counting a failure or forgetting the failures after a success. */
  private async release(
    usernameHash: string,
    result: 'success' | 'failure' | 'uncounted',
  ): Promise<void> {
    const now = Date.now();
    const set: Record<string, () => string> = {
      inFlight: () => 'CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END',
    };
    if (result === 'failure') {
      // Listed before `failures`: MySQL evaluates SET clauses left to right.
      set.windowStart = () =>
        'CASE WHEN failures = 0 AND locked_until <= :now THEN :now ELSE window_start END';
      set.failures = () => 'CASE WHEN locked_until <= :now THEN failures + 1 ELSE failures END';
    } else if (result === 'success') {
      set.failures = () => 'CASE WHEN locked_until <= :now THEN 0 ELSE failures END';
    }
    await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .update()
        .set(set)
        .where('username_hash = :usernameHash')
        .setParameters({ usernameHash, now })
        .execute(),
    );
  }

  /** Locks the username once its failures reach the limit (a lock is set once, never extended). */
  private async lockIfDue(usernameHash: string): Promise<void> {
    const { maxAttempts, seconds } = this.options.lockout || { maxAttempts: 0, seconds: 0 };
    const now = Date.now();
    const locked = await retryOnConflict(() =>
      this.attempts
        .createQueryBuilder()
        .update()
        .set({ failures: 0, lockedUntil: now + seconds * 1000 })
        .where('username_hash = :usernameHash AND locked_until <= :now AND failures >= :max')
        .setParameters({ usernameHash, now, max: maxAttempts })
        .execute(),
    );
    if ((locked.affected ?? 0) > 0) this.events.emit('account.locked', { usernameHash, seconds });
  }
}
