import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AuditEvents } from '../../core/events/audit-events.service.js';
import type { TwoFactorEventMap } from '../../core/events/two-factor.events.js';
import { LockoutService, type GuessOutcome } from '../../core/lockout/lockout.service.js';
import { RawQuery, str } from '../../core/database/raw-query.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { TotpService } from '../totp/totp.service.js';
import { AccountStore, type AccountRecord } from '../../core/accounts/account.store.js';
import { PasswordHasher } from '../../core/passwords/password-hasher.service.js';
import { normaliseUsername } from '../../core/accounts/username.util.js';

/** The factors that prove an account's owner: password and the current second factor. */
export interface AccountFactors {
  password?: string;
  /** Second factor of a secret-key account. */
  secretKey?: string;
  /** Second factor of a TOTP account: the current code… */
  otp?: string;
  /** …or one of its single-use recovery codes. */
  recoveryCode?: string;
}

/** The factors a client presents to log in. */
export interface LoginCredentials extends AccountFactors {
  username: string;
}

type FailureReason = TwoFactorEventMap['login.failed']['reason'];
type SecondFactorUsed = TwoFactorEventMap['login.succeeded']['secondFactor'];

/**
 * Checks the factors, at login and when a logged-in user re-authenticates. Every factor is
 * checked on every attempt (an unknown username against a dummy hash, a missing factor against
 * a dummy key, both second-factor kinds whatever the account uses), so all failures cost the
 * same time and look the same: one 401 body that never says which factor was wrong, nor which
 * kind of second factor the account has. Every check is one counted guess of the lockout.
 */
@Injectable()
export class LoginService {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly raw: RawQuery;

  constructor(
    private readonly accounts: AccountStore,
    @InjectDataSource() dataSource: DataSource,
    private readonly hasher: PasswordHasher,
    private readonly secretKeys: SecretKeyService,
    private readonly totp: TotpService,
    private readonly lockout: LockoutService,
    private readonly events: AuditEvents,
  ) {
    this.raw = new RawQuery(dataSource);
  }

  /**
   * The account whose factors all match.
   * @throws InvalidCredentialsError for any wrong, missing or unknown factor or a disabled
   *         account; LockedError while the username is locked.
   */
  async authenticate(credentials: LoginCredentials): Promise<AccountRecord> {
    const { key } = normaliseUsername(credentials.username);
    const { account, secondFactor } = await this.lockout.attempt(key, async () => {
      const found = await this.accounts.findByUsernameKey(key);
      return this.evaluate(key, found, credentials);
    });
    if (this.hasher.needsRehash(account.passwordHash)) {
      const passwordHash = await this.hasher.hash(credentials.password!);
      // Only over the hash this login checked: a password change since then stands.
      if (await this.accounts.replacePasswordHash(account.id, account.passwordHash, passwordHash)) {
        this.logger.log(
          `Re-hashed the password of account ${account.id} with the current parameters`,
        );
      }
    }
    this.events.emit('login.succeeded', { accountId: account.id, secondFactor });
    return account;
  }

  /**
   * Proves again that the holder of a token of `accountId` is its owner: the account's password
   * and its current second factor, checked and counted exactly like a login (a TOTP or recovery
   * code used here is spent). A bearer token alone never changes how an account logs in.
   * @throws InvalidCredentialsError (the login failure) for any wrong or missing factor;
   *         LockedError while locked.
   */
  async reauthenticate(accountId: string, factors: AccountFactors): Promise<AccountRecord> {
    const account = await this.accounts.findById(accountId);
    // A token of a vanished account: refused like any wrong factor (and nothing to count).
    const key = account?.usernameKey ?? `\0deleted:${accountId}`;
    const result = await this.lockout.attempt(key, async () =>
      this.evaluate(key, account, factors),
    );
    return result.account;
  }

  /** Checks every factor against `account` (or dummies); spends a code only on full success. */
  private async evaluate(
    usernameKey: string,
    account: AccountRecord | null,
    factors: AccountFactors,
  ): Promise<GuessOutcome<{ account: AccountRecord; secondFactor: SecondFactorUsed }>> {
    const [keyHash, totpRow] = account
      ? await Promise.all([this.keyHashOf(account.id), this.totp.activeCredential(account.id)])
      : [null, null];
    const passwordOk = await this.hasher.verify(
      account?.passwordHash ?? null,
      factors.password ?? '',
    );
    const keyOk = this.secretKeys.matches(keyHash, factors.secretKey);
    const totpStep = this.totp.check(totpRow, factors.otp);
    const recoveryId =
      account && totpRow && factors.otp === undefined
        ? await this.totp.findRecoveryCode(account.id, factors.recoveryCode)
        : null;

    const mode = account?.secondFactor;
    const factorOk = mode === 'totp' ? totpStep !== null || recoveryId !== null : keyOk;
    const reason: FailureReason | null = !account
      ? 'unknown-account'
      : !passwordOk
        ? 'bad-password'
        : !factorOk
          ? 'bad-second-factor'
          : account.disabled
            ? 'disabled'
            : null;
    // A valid code is spent only once every other check has passed, atomically: a replay,
    // or a second request racing with the same code, fails here.
    const spent =
      reason !== null ||
      mode !== 'totp' ||
      (totpStep !== null
        ? await this.totp.consume(totpRow!, totpStep)
        : await this.totp.useRecoveryCode(recoveryId!, account!.id));
    if (reason !== null || !spent || !account) {
      this.events.emit('login.failed', {
        usernameHash: this.lockout.keyOf(usernameKey),
        accountId: account?.id ?? null,
        reason: reason ?? 'replayed-code',
      });
      return { ok: false };
    }
    const secondFactor: SecondFactorUsed =
      mode === 'totp' ? (totpStep !== null ? 'totp' : 'recovery-code') : 'secret-key';
    return { ok: true, value: { account, secondFactor } };
  }

  /** The hash of the account's secret key (`null` when it has none): one plain query per login. */
  private async keyHashOf(accountId: string): Promise<string | null> {
    const row = await this.raw.row('SELECT key_hash FROM tfa_secret_keys WHERE account_id = ?', [
      accountId,
    ]);
    return row ? str(row.key_hash) : null;
  }
}
