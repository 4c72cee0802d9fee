import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import type { Repository } from 'typeorm';
import { invalidCredentials, RetryAfterException } from '../common/http.util.js';
import { InjectTwoFactorOptions } from '../common/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';
import { AuditEvents } from '../events/audit-events.service.js';
import type { TwoFactorEventMap } from '../events/two-factor.events.js';
import { LockoutService } from '../lockout/lockout.service.js';
import { SecretKey } from '../secret-keys/secret-key.entity.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { TotpService } from '../totp/totp.service.js';
import { Account } from './account.entity.js';
import { PasswordHasher } from './password-hasher.service.js';
import { normaliseUsername } from './username.util.js';

/** The factors a client presents to log in. */
export interface LoginCredentials {
  username: string;
  password?: string;
  /** Second factor of a secret-key account. */
  secretKey?: string;
  /** Second factor of a TOTP account: the current code… */
  otp?: string;
  /** …or one of its single-use recovery codes. */
  recoveryCode?: string;
}

type FailureReason = TwoFactorEventMap['login.failed']['reason'];

/**
 * Checks the factors. Every factor is checked on every attempt (an unknown username against a
 * dummy hash, a missing factor against a dummy key, both second-factor kinds whatever the
 * account uses), so all failures cost the same time and look the same: one 401 body that never
 * says which factor was wrong, nor which kind of second factor the account has.
 */
@Injectable()
export class LoginService {
  private readonly logger = new Logger('TwoFactorAuth');

  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    @InjectRepository(SecretKey) private readonly secretKeyRows: Repository<SecretKey>,
    private readonly hasher: PasswordHasher,
    private readonly secretKeys: SecretKeyService,
    private readonly totp: TotpService,
    private readonly lockout: LockoutService,
    private readonly events: AuditEvents,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
  ) {}

  /**
   * The account whose factors all match.
   * @throws 401 for any wrong, missing or unknown factor or a disabled account;
   *         429 with Retry-After while the username is locked.
   */
  async authenticate(credentials: LoginCredentials): Promise<Account> {
    const { key } = normaliseUsername(credentials.username);
    const usernameHash = createHash('sha256').update(key, 'utf8').digest('hex');
    const [{ lockedFor, hasFailures }, account] = await Promise.all([
      this.lockout.state(key),
      this.accounts.findOne({ where: { usernameKey: key } }),
    ]);
    const [keyRow, totpRow] = account
      ? await Promise.all([
          this.secretKeyRows.findOne({ where: { accountId: account.id } }),
          this.totp.activeCredential(account.id),
        ])
      : [null, null];

    const passwordOk = await this.hasher.verify(
      account?.passwordHash ?? null,
      credentials.password ?? '',
    );
    const keyOk = this.secretKeys.matches(keyRow?.keyHash ?? null, credentials.secretKey);
    const totpStep = this.totp.check(totpRow, credentials.otp);
    const recoveryId =
      account && totpRow && credentials.otp === undefined
        ? await this.totp.findRecoveryCode(account.id, credentials.recoveryCode)
        : null;

    const mode = account?.secondFactor;
    const factorOk = mode === 'totp' ? totpStep !== null || recoveryId !== null : keyOk;
    const fail = (reason: FailureReason) =>
      this.events.emit('login.failed', { usernameHash, accountId: account?.id ?? null, reason });

    if (lockedFor > 0) {
      fail('locked');
      throw new RetryAfterException(
        HttpStatus.TOO_MANY_REQUESTS,
        'Too many failed logins; try again later',
        lockedFor,
      );
    }
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
      fail(reason ?? 'replayed-code');
      if (await this.lockout.recordFailure(key)) {
        this.events.emit('account.locked', {
          usernameHash,
          seconds: this.options.lockout ? this.options.lockout.seconds : 0,
        });
      }
      throw invalidCredentials();
    }
    // Most logins have no failures on record: no write for them.
    if (hasFailures) await this.lockout.reset(key);
    if (this.hasher.needsRehash(account.passwordHash)) {
      const passwordHash = await this.hasher.hash(credentials.password!);
      await this.accounts.update({ id: account.id }, { passwordHash });
      this.logger.log(
        `Re-hashed the password of account ${account.id} with the current parameters`,
      );
    }
    this.events.emit('login.succeeded', {
      accountId: account.id,
      secondFactor: mode === 'totp' ? (totpStep !== null ? 'totp' : 'recovery-code') : 'secret-key',
    });
    return account;
  }
}
