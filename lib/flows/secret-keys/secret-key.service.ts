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
   * token of the account: the old key and everything obtained with it stop working. When a
   * user rotates their own key, call it only after re-authentication (`ReauthenticationGuard`).
   */
  async rotate(accountId: string): Promise<string> {
    const account = await this.accounts.findById(accountId);
    if (!account) throw new NotFoundError('No such account');
    if (account.secondFactor !== 'secret-key') {
      throw new ConflictError(
        'This account logs in with TOTP codes; turn TOTP off to get a secret key',
      );
    }
    return this.replace(accountId);
  }

  /**
   * Gives the account a new key whatever its mode (used when TOTP is turned off), revoking
   * every token of the account. Returns the key in plain text.
   */
  async replace(accountId: string): Promise<string> {
    const secretKey = this.generate();
    const keyHash = this.hash(secretKey);
    const updated = await this.keys.update({ accountId }, { keyHash, createdAt: Date.now() });
    if (updated.affected !== 1) {
      await this.keys.insert({ id: randomUUID(), accountId, keyHash, createdAt: Date.now() });
    }
    await this.tokens.revokeAllForAccount(accountId, 'secret-key-rotated');
    this.events.emit('secret-key.rotated', { accountId });
    return secretKey;
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
