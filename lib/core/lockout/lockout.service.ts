import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, type Repository } from 'typeorm';
import { databaseClockSql, dialectOf } from '../database/dialect.js';
import { num, RawQuery } from '../database/raw-query.js';
import { IdentifierHasher } from '../identifiers/identifier-hasher.service.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { AuditEvents } from '../events/audit-events.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { LoginAttempt } from './login-attempt.entity.js';
import { retryOnConflict } from '../database/conflict-retry.js';
import { InvalidCredentialsError, LockedError } from '../errors.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** Longest a guess may hold its place; a place held longer is presumed lost (a crash). */
const IN_FLIGHT_LIMIT_MS = 60_000;
/**
 * Longest a guess waits for a place while every place is taken by guesses in flight (not by a
 * lock): long enough for a client's own parallel logins to take turns at a password hash each.
 */
const PLACE_WAIT_MS = 2_000;

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
 * the concurrency and however many instances. A guess that finds every place taken by guesses
 * in flight waits for one (up to `PLACE_WAIT_MS`), so a client's own parallel right logins all
 * succeed, while a burst of wrong guesses ends in a lock and its waiting guesses are refused
 * unevaluated. A success forgets the failures before it but never lifts a lock set meanwhile.
 * A lock lasts `lockout.seconds` and is never extended while it holds.
 */
@Injectable()
export class LockoutService {
  private readonly raw: RawQuery;
  private readonly insertSql: string;
  /**
   * The database's clock (epoch ms) as SQL: every instance stamps and compares lockout times
   * with the same clock, so one whose own clock is off can neither free places nor shorten locks.
   */
  private readonly clock: string;

  constructor(
    @InjectRepository(LoginAttempt) private readonly attempts: Repository<LoginAttempt>,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly identifiers: IdentifierHasher,
    private readonly events: AuditEvents,
    @InjectDataSource() dataSource: DataSource,
  ) {
    // Every login runs these statements: hand-written (see RawQuery), one dialect line apiece.
    this.raw = new RawQuery(dataSource);
    this.clock = databaseClockSql(dialectOf(dataSource));
    const columns =
      '(username_hash, failures, window_start, locked_until, in_flight, in_flight_since) ' +
      'VALUES (?, 0, 0, 0, 0, 0)';
    this.insertSql = {
      sqlite: `INSERT OR IGNORE INTO tfa_login_attempts ${columns}`,
      postgres: `INSERT INTO tfa_login_attempts ${columns} ON CONFLICT DO NOTHING`,
      mysql: `INSERT IGNORE INTO tfa_login_attempts ${columns}`,
    }[dialectOf(dataSource)];
  }

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

  /**
   * Takes a place for one guess; false when locked or every place is taken. One statement when
   * the username has a row: it forgets failures after one lockout period without a failure and
   * places held for longer than a minute (lost to a crash) in the same atomic step as it takes
   * the place. Times are the database's.
   */
  private async reserve(usernameHash: string): Promise<boolean> {
    const { maxAttempts, seconds } = this.options.lockout || { maxAttempts: 0, seconds: 0 };
    const c = this.clock;
    const period = seconds * 1000;
    /** The failures of the current window (none once a lockout period passed without one). */
    const failures = `(CASE WHEN window_start < ${c} - ? THEN 0 ELSE failures END)`;
    // Listed before `in_flight_since`: MySQL evaluates SET clauses left to right.
    const take = () =>
      retryOnConflict(() =>
        this.raw.run(
          `UPDATE tfa_login_attempts SET failures = ${failures}, ` +
            `in_flight = (CASE WHEN in_flight_since < ${c} - ? THEN 0 ELSE in_flight END) + 1, ` +
            `in_flight_since = ${c} ` +
            `WHERE username_hash = ? AND locked_until <= ${c} AND ${failures} + ` +
            `(CASE WHEN in_flight_since < ${c} - ? THEN 0 ELSE in_flight END) < ?`,
          [period, IN_FLIGHT_LIMIT_MS, usernameHash, period, IN_FLIGHT_LIMIT_MS, maxAttempts],
        ),
      );
    // Whether a place can still come free: unlocked and failures below the limit, so the places
    // are held by guesses in flight (or were given back between a failed take and this read).
    const mayFree = async () => {
      const row = await this.raw.row(
        `SELECT CASE WHEN locked_until <= ${c} AND ${failures} < ? THEN 1 ELSE 0 END AS may_free ` +
          'FROM tfa_login_attempts WHERE username_hash = ?',
        [period, maxAttempts, usernameHash],
      );
      return row !== null && num(row.may_free) === 1;
    };
    if ((await take()) === 1) return true;
    // No row yet (or locked, or full): make sure there is one, then try again.
    await retryOnConflict(() => this.raw.run(this.insertSql, [usernameHash]));
    const deadline = Date.now() + PLACE_WAIT_MS;
    for (;;) {
      if ((await take()) === 1) return true;
      // Locked, or full of failures (a lock is due): refused. Full of guesses in flight: their
      // outcome decides, so wait for a place (a few ms apart, every instance polls the row).
      if (Date.now() >= deadline || !(await mayFree())) return false;
      await sleep(5 + Math.floor(Math.random() * 10));
    }
  }

  /** A guess refused unevaluated (locked, or no place came free in time): 429, not counted. */
  private async refuse(usernameHash: string): Promise<LockedError> {
    const c = this.clock;
    await this.lockIfDue(usernameHash);
    const row = await this.raw.row(
      `SELECT locked_until - ${c} AS remaining FROM tfa_login_attempts WHERE username_hash = ?`,
      [usernameHash],
    );
    const remaining = row ? num(row.remaining) : 0;
    this.events.emit('login.failed', { usernameHash, accountId: null, reason: 'locked' });
    return new LockedError(remaining > 0 ? Math.ceil(remaining / 1000) : 1);
  }

  /**
   * Gives a place back, counting a failure or forgetting the failures after a success. Each
   * counted failure restarts the window: failures are forgotten only after a whole lockout
   * period without one, so no moment lets a burst of guesses count from zero again.
   */
  private async release(
    usernameHash: string,
    result: 'success' | 'failure' | 'uncounted',
  ): Promise<void> {
    const c = this.clock;
    const free = 'in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END';
    const set =
      result === 'failure'
        ? // `window_start` before `failures`: MySQL evaluates SET clauses left to right.
          `${free}, window_start = CASE WHEN locked_until <= ${c} THEN ${c} ELSE window_start END, ` +
          `failures = CASE WHEN locked_until <= ${c} THEN failures + 1 ELSE failures END`
        : result === 'success'
          ? `${free}, failures = CASE WHEN locked_until <= ${c} THEN 0 ELSE failures END`
          : free;
    await retryOnConflict(() =>
      this.raw.run(`UPDATE tfa_login_attempts SET ${set} WHERE username_hash = ?`, [usernameHash]),
    );
  }

  /** Locks the username once its failures reach the limit (a lock is set once, never extended). */
  private async lockIfDue(usernameHash: string): Promise<void> {
    const { maxAttempts, seconds } = this.options.lockout || { maxAttempts: 0, seconds: 0 };
    const c = this.clock;
    const locked = await retryOnConflict(() =>
      this.raw.run(
        `UPDATE tfa_login_attempts SET failures = 0, locked_until = ${c} + ? ` +
          `WHERE username_hash = ? AND locked_until <= ${c} AND failures >= ?`,
        [seconds * 1000, usernameHash, maxAttempts],
      ),
    );
    if (locked > 0) this.events.emit('account.locked', { usernameHash, seconds });
  }
}
