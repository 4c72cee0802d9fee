import { Entity, PrimaryColumn, Column } from 'typeorm';
import { InstantColumn } from '../database/instant.column.js';

/**
 * Failed-login state per normalised username, whether or not an account has that name,
 * so lockout behaves identically for unknown names. Keyed by a hash: the table never
 * holds the names an attacker tried.
 */
@Entity({ name: 'tfa_login_attempts' })
export class LoginAttempt {
  /** HMAC-SHA-256 (hex) of the normalised username under the module's identifier key. */
  @PrimaryColumn({ name: 'username_hash', type: 'varchar', length: 64 })
  usernameHash!: string;

  @Column({ type: 'integer', default: 0 })
  failures!: number;

  /** Epoch ms of the first failure counted in the current window. */
  @InstantColumn({ name: 'window_start', default: 0 })
  windowStart!: number;

  /**
   * Guesses being evaluated right now. A guess takes its place before the (slow) password hash
   * and gives it back after, so that failures + in-flight guesses never exceed the limit.
   */
  @Column({ name: 'in_flight', type: 'integer', default: 0 })
  inFlight!: number;

  /** Epoch ms of the last reservation; places held longer than a minute are presumed lost. */
  @InstantColumn({ name: 'in_flight_since', default: 0 })
  inFlightSince!: number;

  /** Epoch ms until which logins are refused (0: not locked). */
  @InstantColumn({ name: 'locked_until', default: 0 })
  lockedUntil!: number;
}
