import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { DataSource, IsNull, type Repository } from 'typeorm';
import type { Account, SecondFactorKind } from '../../core/accounts/account.entity.js';
import type { AccountState } from '../../core/accounts/account-state.entity.js';
import { AccountStore } from '../../core/accounts/account.store.js';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import { AuditEvents } from '../../core/events/audit-events.service.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { TokenService } from '../../core/tokens/token.service.js';
import { LockoutService } from '../../core/lockout/lockout.service.js';
import type {
  ResolvedTotpOptions,
  ResolvedTwoFactorAuthOptions,
} from '../../core/options/two-factor-auth.options.js';
import { RecoveryCode } from '../../core/totp/recovery-code.entity.js';
import { TotpCipher } from '../../core/totp/totp-cipher.js';
import { TotpCredential } from '../../core/totp/totp-credential.entity.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import { retryOnConflict } from '../../core/database/conflict-retry.js';
import { isUniqueViolation } from '../../core/database/dialect.js';
import { num, RawQuery, str, type ChainedWrite } from '../../core/database/raw-query.js';
import type { AccountChangeOptions } from '../../core/tokens/token.types.js';

/**
 * What enrolment hands the user: the secret two ways. Drawing `otpauthUri` as a QR code is
 * left to the client or the application (any QR library, or `qrencode`), so the module needs
 * no image library.
 */
export interface TotpEnrolment {
  /** base32, 160 bits, for manual entry. */
  secret: string;
  /** `otpauth://totp/…` for authenticator apps: the content of the QR code to show. */
  otpauthUri: string;
}

/** The state of an account's TOTP, without secrets. */
export interface TotpStatusView {
  enabled: boolean;
  pending: boolean;
  recoveryCodesRemaining: number;
}

const RECOVERY_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/**
 * TOTP (RFC 6238) as an account's second factor, and its single-use recovery codes.
 * A code is accepted at most once per account, across instances: the last used time step is
 * stored and moved forward with one atomic UPDATE.
 */
@Injectable()
export class TotpService {
  private readonly raw: RawQuery;
  private readonly credentials: Repository<TotpCredential>;
  private readonly recovery: Repository<RecoveryCode>;
  private readonly states: Repository<Account | AccountState>;
  private readonly cipher: TotpCipher | null;
  private readonly totp: ResolvedTotpOptions | false;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    @InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions,
    private readonly secretKeys: SecretKeyService,
    private readonly events: AuditEvents,
    private readonly tokens: TokenService,
    private readonly lockout: LockoutService,
    private readonly accounts: AccountStore,
  ) {
    this.raw = new RawQuery(dataSource);
    this.credentials = dataSource.getRepository(TotpCredential);
    this.recovery = dataSource.getRepository(RecoveryCode);
    this.states = accounts.states();
    this.totp = options.totp;
    this.cipher = options.totp ? new TotpCipher(options.totp.encryptionKeys) : null;
  }

  /** Whether TOTP is configured at all. */
  get enabled(): boolean {
    return this.totp !== false;
  }

  /**
   * Starts enrolment: a new secret, stored encrypted as pending until `confirm()` or until
   * `totp.enrolmentTtl` seconds have passed. Call it only after re-authentication
   * (`ReauthenticationGuard`): whoever confirms the enrolment owns the account's second factor.
   * @throws ConflictError when TOTP is already active for the account.
   */
  async begin(accountId: string): Promise<TotpEnrolment> {
    const totp = this.settings();
    const account = await this.accounts.findById(accountId);
    if (!account) throw new NotFoundError('No such account');
    if (account.secondFactor === 'totp') throw new ConflictError('TOTP is already enabled');
    const secret = new Secret({ size: 20 });
    const { keyId, ciphertext } = this.cipher!.encrypt(secret.base32, accountId);
    const pending = {
      id: randomUUID(),
      accountId,
      secretCiphertext: ciphertext,
      keyId,
      status: 'pending' as const,
      lastUsedStep: 0,
      createdAt: Date.now(),
    };
    const { id, secretCiphertext, lastUsedStep, createdAt } = pending;
    for (let attempt = 1; ; attempt++) {
      // A pending enrolment is replaced in place, a new id with it (a confirmation in flight
      // for the old secret then finds nothing to spend); an active secret is never touched.
      const replaced = await retryOnConflict(() =>
        this.credentials.update(
          { accountId, status: 'pending' },
          { id, secretCiphertext, keyId, lastUsedStep, createdAt },
        ),
      );
      if (replaced.affected) break;
      try {
        await retryOnConflict(() => this.credentials.insert(pending));
        break;
      } catch (error) {
        // The account has a row again: a confirmation won (TOTP is now on), or a parallel
        // start inserted its secret first, which the next round replaces, as a second start
        // one after the other would.
        if (!isUniqueViolation(error)) throw error;
        if (await this.credentials.exists({ where: { accountId, status: 'active' } })) {
          throw new ConflictError('TOTP is already enabled');
        }
        if (attempt >= 5) throw error;
      }
    }
    const otpauthUri = this.generator(secret, account.username, totp).toString();
    return { secret: secret.base32, otpauthUri };
  }

  /**
   * Confirms enrolment with a valid code: from now on the account logs in with TOTP codes, its
   * secret key is deleted, the returned recovery codes (shown once) replace it as backup, and
   * every token of the account is revoked (log in again with a code). A wrong code counts
   * toward the account's lockout like a failed login.
   * @throws InvalidCredentialsError for a wrong code, LockedError while locked, NotFoundError
   *         when no enrolment is pending (or it expired).
   */
  async confirm(
    accountId: string,
    otp: string,
    options: AccountChangeOptions = {},
  ): Promise<string[]> {
    const totp = this.settings();
    const [row, account] = await Promise.all([
      this.credentials.findOne({ where: { accountId, status: 'pending' } }),
      this.accounts.findById(accountId),
    ]);
    if (row && row.createdAt + totp.enrolmentTtl * 1000 <= Date.now()) {
      await this.credentials.delete({ id: row.id, status: 'pending' });
    }
    if (!row || !account || row.createdAt + totp.enrolmentTtl * 1000 <= Date.now()) {
      throw new NotFoundError('No TOTP enrolment is pending; start one first');
    }
    await this.lockout.attempt(account.usernameKey, async () => {
      const step = this.check(row, otp);
      const ok = step !== null && (await this.consume(row, step, 'pending'));
      return ok ? { ok: true, value: step } : { ok: false };
    });
    // The switch is one step with the end of every session, this one included (ASVS 7.4.3):
    // the secret confirmed must still be the pending one (a new start replaces it).
    const codes = this.newRecoveryCodes();
    await this.tokens.changeAccount(
      accountId,
      'second-factor-changed',
      [
        {
          sql: "UPDATE tfa_totp_credentials SET status = 'active' WHERE id = ? AND status = 'pending'",
          params: [row.id],
          need: 1,
        },
        this.stateWrite(accountId, 'totp'),
        { sql: 'DELETE FROM tfa_secret_keys WHERE account_id = ?', params: [accountId] },
        ...this.recoveryCodeWrites(accountId, codes),
      ],
      options,
    );
    this.events.emit('totp.enabled', { accountId });
    return codes;
  }

  /**
   * Turns TOTP off and gives the account a fresh secret key (the second factor again, returned
   * in plain text), in one step with the revocation of every token of the account. Call it
   * only after re-authentication (`ReauthenticationGuard`), with the request's principal as
   * `options.session` (see `AccountChangeOptions`).
   * @throws NotFoundError when TOTP is not active; ConflictError for a `session` that has ended.
   */
  async disable(accountId: string, options: AccountChangeOptions = {}): Promise<string> {
    if (!(await this.activeCredential(accountId))) throw notEnabled();
    const { secretKey, writes } = this.secretKeys.keyWrites(accountId);
    await this.tokens.changeAccount(
      accountId,
      'second-factor-changed',
      [
        this.stateWrite(accountId, 'secret-key'),
        ...writes,
        { sql: 'DELETE FROM tfa_totp_credentials WHERE account_id = ?', params: [accountId] },
        { sql: 'DELETE FROM tfa_recovery_codes WHERE account_id = ?', params: [accountId] },
      ],
      options,
    );
    this.events.emit('secret-key.rotated', { accountId });
    this.events.emit('totp.disabled', { accountId });
    return secretKey;
  }

  /**
   * New recovery codes; the old ones stop working (all of them, whatever races with it: the
   * replacement is one step, after any other in flight, and only while TOTP is on). Call it
   * only after re-authentication (`ReauthenticationGuard`).
   * @throws NotFoundError when TOTP is not active (or was turned off meanwhile).
   */
  async regenerateRecoveryCodes(accountId: string): Promise<string[]> {
    if (!(await this.activeCredential(accountId))) throw notEnabled();
    const codes = this.newRecoveryCodes();
    // The account's row first, while it says TOTP: its lock queues a racing replacement or
    // disable behind this one (a replacement's DELETE then sees these codes), and a disable
    // that committed first makes it write nothing.
    const changed = await this.raw.atomicChain([
      { ...this.stateWrite(accountId, null, 'totp'), need: 1 },
      ...this.recoveryCodeWrites(accountId, codes),
    ]);
    if (changed[0] !== 1) throw notEnabled();
    return codes;
  }

  async status(accountId: string): Promise<TotpStatusView> {
    const row = await this.credentials.findOne({ where: { accountId } });
    const expired =
      row?.status === 'pending' &&
      row.createdAt + (this.totp ? this.totp.enrolmentTtl : 0) * 1000 <= Date.now();
    const recoveryCodesRemaining = await this.recovery.count({
      where: { accountId, usedAt: IsNull() },
    });
    return {
      enabled: row?.status === 'active',
      pending: row?.status === 'pending' && !expired,
      recoveryCodesRemaining,
    };
  }

  /** The active credential of an account, for the login check (`null` when none). */
  async activeCredential(accountId: string): Promise<TotpCredential | null> {
    if (!this.enabled) return null;
    // Read on every login while TOTP is on, whatever the account's second factor: one plain
    // query (see `RawQuery`), not TypeORM's `findOne`.
    const row = await this.raw.row(
      'SELECT id, account_id, secret_ciphertext, key_id, status, last_used_step, created_at ' +
        "FROM tfa_totp_credentials WHERE account_id = ? AND status = 'active'",
      [accountId],
    );
    return row
      ? Object.assign(new TotpCredential(), {
          id: str(row.id)!,
          accountId: str(row.account_id)!,
          secretCiphertext: str(row.secret_ciphertext)!,
          keyId: str(row.key_id)!,
          status: 'active',
          lastUsedStep: num(row.last_used_step),
          createdAt: num(row.created_at),
        })
      : null;
  }

  /** The time step `otp` belongs to, if it is valid now for this credential (nothing consumed). */
  check(row: TotpCredential | null, otp: string | undefined): number | null {
    const totp = this.totp;
    if (!row || !totp || typeof otp !== 'string' || !new RegExp(`^\\d{${totp.digits}}$`).test(otp))
      return null;
    const base32 = this.cipher!.decrypt(row.secretCiphertext, row.keyId, row.accountId);
    if (!base32) return null;
    const now = Date.now();
    const delta = this.generator(Secret.fromBase32(base32), '', totp).validate({
      token: otp,
      timestamp: now,
      window: totp.window,
    });
    if (delta === null) return null;
    const step = Math.floor(now / 1000 / totp.period) + delta;
    return step > row.lastUsedStep ? step : null;
  }

  /** Marks `step` used; false when this or a later step was used already (a replay). */
  async consume(
    row: TotpCredential,
    step: number,
    status: 'active' | 'pending' = 'active',
  ): Promise<boolean> {
    // Hand-written (see `RawQuery`): on SQLite it never joins an application's transaction,
    // whose rollback would make a used code good again.
    const changed = await retryOnConflict(() =>
      this.raw.run(
        'UPDATE tfa_totp_credentials SET last_used_step = ? ' +
          'WHERE id = ? AND status = ? AND last_used_step < ?',
        [step, row.id, status, step],
      ),
    );
    return changed === 1;
  }

  /** The id of an unused recovery code of the account equal to `code`, or `null`. */
  async findRecoveryCode(accountId: string, code: string | undefined): Promise<string | null> {
    if (typeof code !== 'string' || code.length > 64) return null;
    const codeHash = this.hashRecoveryCode(code);
    const row = await this.recovery.findOne({ where: { accountId, codeHash, usedAt: IsNull() } });
    return row?.id ?? null;
  }

  /** Spends a recovery code; false when it was spent already (a race or replay). */
  async useRecoveryCode(id: string, accountId: string): Promise<boolean> {
    const changed = await retryOnConflict(() =>
      this.raw.run('UPDATE tfa_recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL', [
        Date.now(),
        id,
      ]),
    );
    if (changed === 1) this.events.emit('recovery-code.used', { accountId });
    return changed === 1;
  }

  private newRecoveryCodes(): string[] {
    return Array.from({ length: this.settings().recoveryCodes }, () => newRecoveryCode());
  }

  /** The writes that replace the account's recovery codes with `codes`. */
  private recoveryCodeWrites(accountId: string, codes: string[]): ChainedWrite[] {
    const now = Date.now();
    return [
      { sql: 'DELETE FROM tfa_recovery_codes WHERE account_id = ?', params: [accountId] },
      {
        sql:
          'INSERT INTO tfa_recovery_codes (id, account_id, code_hash, used_at, created_at) ' +
          `VALUES ${codes.map(() => '(?, ?, ?, NULL, ?)').join(', ')}`,
        params: codes.flatMap((code) => [
          randomUUID(),
          accountId,
          this.hashRecoveryCode(code),
          now,
        ]),
      },
    ];
  }

  /**
   * An update of the account's state row (`Account` or `AccountState`): its second factor set
   * to `set` (left as it is for `null`) and its `updatedAt` stamped, only while the factor is
   * `onlyIf` when given.
   */
  private stateWrite(
    accountId: string,
    set: SecondFactorKind | null,
    onlyIf?: SecondFactorKind,
  ): ChainedWrite {
    const states = this.states.metadata;
    const column = (property: string) => this.raw.column(states, property);
    const factor = column('secondFactor');
    return {
      sql:
        `UPDATE ${this.raw.table(states)} SET ${set ? `${factor} = ?, ` : ''}` +
        `${column('updatedAt')} = ? WHERE ${column('id')} = ?` +
        (onlyIf ? ` AND ${factor} = ?` : ''),
      params: [...(set ? [set] : []), Date.now(), accountId, ...(onlyIf ? [onlyIf] : [])],
    };
  }

  private hashRecoveryCode(code: string): string {
    return this.secretKeys.hash(`recovery-code:${code.toUpperCase().replace(/[\s-]/g, '')}`);
  }

  private generator(secret: Secret, label: string, totp: ResolvedTotpOptions): TOTP {
    return new TOTP({
      issuer: totp.issuer,
      label,
      algorithm: totp.algorithm,
      digits: totp.digits,
      period: totp.period,
      secret,
    });
  }

  private settings(): ResolvedTotpOptions {
    if (!this.totp) throw new NotFoundError('TOTP is not enabled on this server');
    return this.totp;
  }
}

/** 25 characters of a 32-letter unambiguous alphabet (125 bits), as 5 groups of 5. */
function newRecoveryCode(): string {
  const bytes = randomBytes(25);
  const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b % RECOVERY_ALPHABET.length]).join('');
  return chars.match(/.{5}/g)!.join('-');
}

function notEnabled(): NotFoundError {
  return new NotFoundError('TOTP is not enabled for this account');
}
