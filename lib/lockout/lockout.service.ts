import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import type { Repository } from 'typeorm';
import { InjectTwoFactorOptions } from '../common/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';
import { LoginAttempt } from './login-attempt.entity.js';

/**
 * Per-username lockout, persisted in the database so that it survives restarts and is shared
 * by every instance. It counts by normalised username whether or not the account exists, so a
 * lock (a 429) says nothing about which usernames are real. A lock lasts `lockout.seconds` and
 * is never extended while it holds: an attacker can keep a victim out for at most that long
 * per `maxAttempts` guesses, and the per-client throttle limits how fast those come.
 */
@Injectable()
export class LockoutService {
  constructor(
    @InjectRepository(LoginAttempt) private readonly attempts: Repository<LoginAttempt>,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
  ) {}

  /** Seconds until the username unlocks, or 0 when it is not locked. */
  async lockedFor(usernameKey: string, now = Date.now()): Promise<number> {
    return (await this.state(usernameKey, now)).lockedFor;
  }

  /** Seconds until the username unlocks (0: not locked), and whether failures are on record. */
  async state(
    usernameKey: string,
    now = Date.now(),
  ): Promise<{ lockedFor: number; hasFailures: boolean }> {
    if (!this.options.lockout) return { lockedFor: 0, hasFailures: false };
    const row = await this.attempts.findOne({ where: { usernameHash: hashKey(usernameKey) } });
    return {
      lockedFor: row && row.lockedUntil > now ? Math.ceil((row.lockedUntil - now) / 1000) : 0,
      hasFailures: row !== null,
    };
  }

  /**
   * Counts one failed login. Atomic across instances: the counter is incremented in SQL.
   * @returns true when this failure locked the username.
   */
  async recordFailure(usernameKey: string, now = Date.now()): Promise<boolean> {
    const lockout = this.options.lockout;
    if (!lockout) return false;
    const usernameHash = hashKey(usernameKey);
    const windowStartsAfter = now - lockout.seconds * 1000;
    await this.attempts
      .createQueryBuilder()
      .insert()
      .values({ usernameHash, failures: 0, windowStart: now, lockedUntil: 0 })
      .orIgnore()
      .execute();
    // Failures older than one lockout period no longer count; a locked name is not counted
    // (so a lock is never extended).
    await this.attempts
      .createQueryBuilder()
      .update()
      .set({
        failures: () => 'CASE WHEN window_start < :cutoff THEN 1 ELSE failures + 1 END',
        windowStart: () => 'CASE WHEN window_start < :cutoff THEN :now ELSE window_start END',
      })
      .where('username_hash = :usernameHash AND locked_until <= :now')
      .setParameters({ cutoff: windowStartsAfter, now, usernameHash })
      .execute();
    const locked = await this.attempts
      .createQueryBuilder()
      .update()
      .set({ failures: 0, lockedUntil: now + lockout.seconds * 1000 })
      .where('username_hash = :usernameHash AND locked_until <= :now AND failures >= :max')
      .setParameters({ usernameHash, now, max: lockout.maxAttempts })
      .execute();
    return (locked.affected ?? 0) > 0;
  }

  /** Forgets the failures of a username after a successful login. */
  async reset(usernameKey: string): Promise<void> {
    if (!this.options.lockout) return;
    await this.attempts.delete({ usernameHash: hashKey(usernameKey) });
  }
}

function hashKey(usernameKey: string): string {
  return createHash('sha256').update(usernameKey, 'utf8').digest('hex');
}
