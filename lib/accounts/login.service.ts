import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { invalidCredentials, RetryAfterException } from '../common/http.util.js';
import { LockoutService } from '../lockout/lockout.service.js';
import { SecretKey } from '../secret-keys/secret-key.entity.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { Account } from './account.entity.js';
import { PasswordHasher } from './password-hasher.service.js';
import { normaliseUsername } from './username.util.js';

/** The factors a client presents to log in. */
export interface LoginCredentials {
  username: string;
  password?: string;
  secretKey?: string;
}

/**
 * Checks the three factors. Every factor is checked on every attempt (an unknown username is
 * checked against a dummy hash, a missing factor against a dummy key), so all failures cost the
 * same time and look the same: one 401 body that never says which factor was wrong.
 */
@Injectable()
export class LoginService {
  private readonly logger = new Logger('TwoFactorAuth');

  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    @InjectRepository(SecretKey) private readonly secretKeyRows: Repository<SecretKey>,
    private readonly hasher: PasswordHasher,
    private readonly secretKeys: SecretKeyService,
    private readonly lockout: LockoutService,
  ) {}

  /**
   * The account whose three factors all match.
   * @throws 401 for any wrong, missing or unknown factor or a disabled account;
   *         429 with Retry-After while the username is locked.
   */
  async authenticate(credentials: LoginCredentials): Promise<Account> {
    const { key } = normaliseUsername(credentials.username);
    const [lockedFor, account] = await Promise.all([
      this.lockout.lockedFor(key),
      this.accounts.findOne({ where: { usernameKey: key } }),
    ]);
    const keyRow = account
      ? await this.secretKeyRows.findOne({ where: { accountId: account.id } })
      : null;

    const passwordOk = await this.hasher.verify(
      account?.passwordHash ?? null,
      credentials.password ?? '',
    );
    const keyOk = this.secretKeys.matches(keyRow?.keyHash ?? null, credentials.secretKey);
    const ok = passwordOk && keyOk && account !== null && !account.disabled;

    if (lockedFor > 0) {
      throw new RetryAfterException(
        HttpStatus.TOO_MANY_REQUESTS,
        'Too many failed logins; try again later',
        lockedFor,
      );
    }
    if (!ok || !account) {
      await this.lockout.recordFailure(key);
      throw invalidCredentials();
    }
    await this.lockout.reset(key);
    if (this.hasher.needsRehash(account.passwordHash)) {
      const passwordHash = await this.hasher.hash(credentials.password!);
      await this.accounts.update({ id: account.id }, { passwordHash });
      this.logger.log(
        `Re-hashed the password of account ${account.id} with the current parameters`,
      );
    }
    return account;
  }
}
