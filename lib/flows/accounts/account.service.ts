import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, type Repository } from 'typeorm';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import { isUniqueViolation } from '../../core/database/dialect.js';
import { AuditEvents } from '../../core/events/audit-events.service.js';
import { LockoutService } from '../../core/lockout/lockout.service.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { TokenService } from '../../core/tokens/token.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../../core/options/two-factor-auth.options.js';
import { Account } from '../../core/accounts/account.entity.js';
import { PasswordHasher } from '../../core/passwords/password-hasher.service.js';
import { normaliseUsername, usernameProblem } from '../../core/accounts/username.util.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../core/errors.js';

/** A new account and its secret key, in plain text: shown to its owner once, never stored. */
export interface CreatedAccount {
  account: Account;
  secretKey: string;
}

/** Creates accounts and changes their credentials. */
@Injectable()
export class AccountService {
  private readonly accounts: Repository<Account>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly hasher: PasswordHasher,
    private readonly secretKeys: SecretKeyService,
    private readonly tokens: TokenService,
    private readonly lockout: LockoutService,
    private readonly events: AuditEvents,
  ) {
    this.accounts = dataSource.getRepository(Account);
  }

  /**
   * Creates an account and its secret key.
   * @throws InvalidInputError for a username or password that breaks the rules.
   * @throws ConflictError when the (normalised) username is taken.
   */
  async create(username: string, password: string): Promise<CreatedAccount> {
    const { display, key } = normaliseUsername(username);
    const problem = usernameProblem(display) ?? this.passwordProblem(password);
    if (problem) throw new InvalidInputError(problem);
    if (await this.accounts.exists({ where: { usernameKey: key } })) throw taken();
    const now = Date.now();
    const account = this.accounts.create({
      id: randomUUID(),
      username: display,
      usernameKey: key,
      passwordHash: await this.hasher.hash(password),
      disabled: false,
      secondFactor: 'secret-key',
      tokenEpoch: 0,
      tokensValidAfter: 0,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await this.accounts.insert(account);
    } catch (error) {
      if (isUniqueViolation(error)) throw taken();
      throw error;
    }
    try {
      return { account, secretKey: await this.secretKeys.create(account.id) };
    } catch (error) {
      // No transaction (SQLite runs one connection, shared by concurrent requests): undo by hand.
      await this.accounts.delete({ id: account.id }).catch(() => undefined);
      throw error;
    }
  }

  findById(id: string): Promise<Account | null> {
    return this.accounts.findOne({ where: { id } });
  }

  findByUsername(username: string): Promise<Account | null> {
    return this.accounts.findOne({ where: { usernameKey: normaliseUsername(username).key } });
  }

  /**
   * Sets a new password and revokes every token of the account. When a user changes their own
   * password, call it only after re-authentication (`ReauthenticationGuard`).
   */
  async changePassword(id: string, newPassword: string): Promise<void> {
    const problem = this.passwordProblem(newPassword);
    if (problem) throw new InvalidInputError(problem);
    const passwordHash = await this.hasher.hash(newPassword);
    const result = await this.accounts.update({ id }, { passwordHash, updatedAt: Date.now() });
    if (result.affected !== 1) throw new NotFoundError('No such account');
    await this.tokens.revokeAllForAccount(id, 'password-changed');
    this.events.emit('password.changed', { accountId: id });
  }

  /** Disables the account (no more logins) and revokes every token of it. */
  async disable(id: string): Promise<void> {
    const result = await this.accounts.update({ id }, { disabled: true, updatedAt: Date.now() });
    if (result.affected !== 1) throw new NotFoundError('No such account');
    await this.tokens.revokeAllForAccount(id, 'account-disabled');
    this.events.emit('account.disabled', { accountId: id });
  }

  /** Lets a disabled account log in again (its old tokens stay revoked). */
  async enable(id: string): Promise<void> {
    const result = await this.accounts.update({ id }, { disabled: false, updatedAt: Date.now() });
    if (result.affected !== 1) throw new NotFoundError('No such account');
    this.events.emit('account.enabled', { accountId: id });
  }

  /**
   * Deletes the account with every row the module keeps about it (secret key, token records,
   * TOTP, recovery codes, lockout counter), and refuses every token of it at once, on every
   * instance: the revocation is recorded in the revocation log (which outlives the account)
   * and published before the rows go. Deleting the account's row by hand skips that step: a
   * token an instance has already verified would keep working until it expires.
   * When a user deletes their own account, call it only after re-authentication.
   * @throws NotFoundError when there is no such account.
   */
  async delete(id: string): Promise<void> {
    const account = await this.accounts.findOne({ where: { id } });
    if (!account) throw new NotFoundError('No such account');
    await this.tokens.revokeAllForAccount(id, 'account-deleted');
    // The foreign keys cascade to every other table of the module.
    await this.accounts.delete({ id });
    await this.lockout.forget(account.usernameKey);
    this.events.emit('account.deleted', { accountId: id });
  }

  /** Why a password cannot be set, or `null`. Lengths count characters; nothing is truncated. */
  passwordProblem(password: unknown): string | null {
    const { minLength, maxLength } = this.options.password;
    if (typeof password !== 'string') return 'password must be a string';
    const length = [...password].length;
    if (length < minLength) return `password must be at least ${minLength} characters long`;
    if (length > maxLength) return `password must be at most ${maxLength} characters long`;
    if (password.includes('\0')) return 'password must not contain NUL characters';
    return null;
  }
}

function taken(): ConflictError {
  return new ConflictError('That username is taken');
}
