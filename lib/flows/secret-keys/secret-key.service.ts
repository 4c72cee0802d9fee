import { Injectable } from '@nestjs/common';
import { AccountStore } from '../../core/accounts/account.store.js';
import { InjectRepository } from '@nestjs/typeorm';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { EntityManager, Repository } from 'typeorm';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import { AuditEvents } from '../../core/events/audit-events.service.js';
import { TokenService } from '../../core/tokens/token.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../../core/options/two-factor-auth.options.js';
import { SecretKey } from '../../core/secret-keys/secret-key.entity.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import type { ChainedWrite } from '../../core/database/raw-query.js';
import type { AccountChangeOptions } from '../../core/tokens/token.types.js';

/** Bytes of randomness in a secret key: 256 bits, 43 base64url characters. */
export const SECRET_KEY_BYTES = 32;
const SECRET_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Used when no pepper is configured; domain-separates the hash all the same. */
const DEFAULT_PEPPER = Buffer.from('nestjs-rest-2fa/secret-key/v1');

/**
 * Secret keys: the default second factor, generated with the account and shown once.
 * Only an HMAC-SHA-256 of each key is stored; verification compares in constant time.
 */
@Injectable()
export class SecretKeyService {
  private readonly pepper: Buffer;
  private readonly dummyHash: Buffer;

  constructor(
    @InjectRepository(SecretKey) private readonly keys: Repository<SecretKey>,
    @InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions,
    private readonly tokens: TokenService,
    private readonly events: AuditEvents,
    private readonly accounts: AccountStore,
  ) {
    this.pepper = options.secretKeyPepper ?? DEFAULT_PEPPER;
    this.dummyHash = this.digest(randomBytes(SECRET_KEY_BYTES).toString('base64url'));
  }

  /** A new random key (256 bits, base64url). Not stored: see `create` and `rotate`. */
  generate(): string {
    return randomBytes(SECRET_KEY_BYTES).toString('base64url');
  }

  /** The stored form of a key: HMAC-SHA-256 under the pepper, hex. */
  hash(secretKey: string): string {
    return this.digest(secretKey).toString('hex');
  }

  /** Gives `accountId` a new key and returns it in plain text (the only time it exists). */
  async create(accountId: string, manager?: EntityManager): Promise<string> {
    const secretKey = this.generate();
    const repo = manager ? manager.getRepository(SecretKey) : this.keys;
    await repo.insert({
      id: randomUUID(),
      accountId,
      keyHash: this.hash(secretKey),
      createdAt: Date.now(),
    });
    return secretKey;
  }

  /** Constant-time comparison of a presented key with a stored hash (`null`: none stored). */
  matches(storedHash: string | null, secretKey: string | undefined): boolean {
    const presented = this.digest(typeof secretKey === 'string' ? secretKey : '');
    const stored = storedHash ? Buffer.from(storedHash, 'hex') : this.dummyHash;
    const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
    return (
      equal &&
      storedHash !== null &&
      typeof secretKey === 'string' &&
      SECRET_KEY_PATTERN.test(secretKey)
    );
  }

  /**
   * Replaces the account's key with a new one, returned in plain text, and revokes every
   * token of the account, in one step: the old key and everything obtained with it stop
   * working. When a user rotates their own key, call it only after re-authentication
   * (`ReauthenticationGuard`), and pass the request's principal as `options.session`: of
   * rotations racing through the account's logins, one applies (see `AccountChangeOptions`).
   * @throws NotFoundError; ConflictError for a TOTP account, or a `session` that has ended.
   */
  async rotate(accountId: string, options: AccountChangeOptions = {}): Promise<string> {
    const account = await this.accounts.findById(accountId);
    if (!account) throw new NotFoundError('No such account');
    if (account.secondFactor !== 'secret-key') {
      throw new ConflictError(
        'This account logs in with TOTP codes; turn TOTP off to get a secret key',
      );
    }
    return this.replace(accountId, options);
  }

  /**
   * Gives the account a new key whatever its mode, revoking every token of the account in the
   * same step. Returns the key in plain text.
   * @throws ConflictError for an `options.session` that has ended.
   */
  async replace(accountId: string, options: AccountChangeOptions = {}): Promise<string> {
    const { secretKey, writes } = this.keyWrites(accountId);
    await this.tokens.changeAccount(accountId, 'secret-key-rotated', writes, options);
    this.events.emit('secret-key.rotated', { accountId });
    return secretKey;
  }

  /**
   * A new key for the account (in plain text) and the writes that store it in place of the old
   * one, if any: for a change that gives the account a key among other writes.
   * @internal
   */
  keyWrites(accountId: string): { secretKey: string; writes: ChainedWrite[] } {
    const secretKey = this.generate();
    return {
      secretKey,
      writes: [
        { sql: 'DELETE FROM tfa_secret_keys WHERE account_id = ?', params: [accountId] },
        {
          sql:
            'INSERT INTO tfa_secret_keys (id, account_id, key_hash, created_at) ' +
            'VALUES (?, ?, ?, ?)',
          params: [randomUUID(), accountId, this.hash(secretKey), Date.now()],
        },
      ],
    };
  }

  /** Removes the account's key (no key logs in until `rotate`) and revokes its tokens. */
  async revoke(accountId: string): Promise<void> {
    await this.keys.delete({ accountId });
    await this.tokens.revokeAllForAccount(accountId, 'secret-key-revoked');
  }

  private digest(secretKey: string): Buffer {
    return createHmac('sha256', this.pepper).update(secretKey, 'utf8').digest();
  }
}
