import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import { isUniqueViolation } from '../../core/database/dialect.js';
import { AuditEvents } from '../../core/events/audit-events.service.js';
import { LockoutService } from '../../core/lockout/lockout.service.js';
import { SecretKeyService } from '../secret-keys/secret-key.service.js';
import { TokenService } from '../../core/tokens/token.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../../core/options/two-factor-auth.options.js';
import { Account } from '../../core/accounts/account.entity.js';
import { AccountStore, type AccountRecord } from '../../core/accounts/account.store.js';
import { PasswordHasher } from '../../core/passwords/password-hasher.service.js';
import { normaliseUsername, usernameProblem } from '../../core/accounts/username.util.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import type { AccountChangeOptions } from '../../core/tokens/token.types.js';

/** A new account and its secret key, in plain text: shown to its owner once, never stored. */
export interface CreatedAccount {
  account: Account;
  secretKey: string;
}

/** Where a write happens: in the caller's transaction when `manager` is given. */
export interface InTransaction {
  /** The `EntityManager` of the caller's transaction (`dataSource.transaction(manager => …)`). */
  manager?: EntityManager;
}

/**
 * Creates accounts (or, for an application's own users table, their second factor) and changes
 * their credentials, names and state. Every change that must end sessions revokes every token
 * of the account, on every instance, before it returns.
 */
@Injectable()
export class AccountService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly accounts: AccountStore,
    private readonly hasher: PasswordHasher,
    private readonly secretKeys: SecretKeyService,
    private readonly tokens: TokenService,
    private readonly lockout: LockoutService,
    private readonly events: AuditEvents,
  ) {}

  /**
   * Creates an account of the module's own store and its secret key. With `manager`, both rows
   * are written in the caller's transaction (they exist together or not at all); without it,
   * a failure after the account row removes it again.
   * @throws InvalidInputError for a username or password that breaks the rules.
   * @throws ConflictError when the (normalised) username is taken, or when the application
   *         brings its own users table (create the user there, then call `enrol`).
   */
  async create(
    username: string,
    password: string,
    { manager }: InTransaction = {},
  ): Promise<CreatedAccount> {
    if (this.accounts.external) {
      throw new ConflictError(
        "Accounts live in the application's own table: create the user there, then call AccountService.enrol(id)",
      );
    }
    const { display, key } = normaliseUsername(username);
    const problem = this.usernameProblem(display) ?? this.passwordProblem(password);
    if (problem) throw new InvalidInputError(problem);
    if (await this.accounts.nameTaken(key)) throw taken();
    const passwordHash = await this.hasher.hash(password);
    const now = Date.now();
    const repository = (manager ?? this.dataSource.manager).getRepository(Account);
    const account = repository.create({
      id: randomUUID(),
      username: display,
      usernameKey: key,
      passwordHash,
      disabled: false,
      secondFactor: 'secret-key',
      tokenEpoch: 0,
      tokensValidAfter: 0,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await repository.insert(account);
    } catch (error) {
      if (isUniqueViolation(error)) throw taken();
      throw error;
    }
    try {
      const secretKey = await this.secretKeys.create(account.id, manager);
      this.events.emit('account.created', { accountId: account.id });
      return { account, secretKey };
    } catch (error) {
      // In the caller's transaction, its rollback undoes the account. Without one (SQLite runs
      // one connection, shared by concurrent requests), undo by hand.
      if (!manager) await repository.delete({ id: account.id }).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Gives an account of the application's own users table its second factor: a secret key,
   * returned in plain text (show it to its owner once; only a hash is stored). Pass the
   * `manager` of the transaction that creates the user, so that the user and their key exist
   * together or not at all.
   * The `account.enrolled` event is emitted when this returns, before your transaction
   * commits: a listener that must not see rolled-back enrolments should check the account.
   * @throws NotFoundError when the table has no such account (in that transaction);
   *         ConflictError when it already has a second factor.
   */
  async enrol(
    accountId: string | number,
    { manager }: InTransaction = {},
  ): Promise<{ secretKey: string }> {
    const id = String(accountId);
    if (!this.accounts.external) {
      throw new ConflictError(
        "Accounts of the module's own store get their secret key from AccountService.create",
      );
    }
    if (!this.accounts.isId(id)) {
      throw new InvalidInputError(
        'An account id must be its column’s own spelling: 1 to 36 printable ASCII characters',
      );
    }
    await this.accounts.enrol(id, manager);
    const secretKey = await this.secretKeys.create(id, manager);
    this.events.emit('account.enrolled', { accountId: id });
    return { secretKey };
  }

  /** The account `id`, or `null` (with an own users table: only accounts with a second factor). */
  findById(id: string | number): Promise<AccountRecord | null> {
    return this.accounts.findById(String(id));
  }

  /** The account whose login name is `username` once normalised, or `null`. */
  findByUsername(username: string): Promise<AccountRecord | null> {
    return this.accounts.findByUsernameKey(normaliseUsername(username).key);
  }

  /**
   * Sets a new password and revokes every token of the account, in one step. When a user
   * changes their own password, call it only after re-authentication (`ReauthenticationGuard`),
   * and pass the request's principal as `options.session`: of changes racing through the
   * account's logins, one applies (see `AccountChangeOptions`).
   * @throws InvalidInputError, NotFoundError; ConflictError for a `session` that has ended.
   */
  async changePassword(
    id: string | number,
    newPassword: string,
    options: AccountChangeOptions = {},
  ): Promise<void> {
    const accountId = String(id);
    const problem = this.passwordProblem(newPassword);
    if (problem) throw new InvalidInputError(problem);
    await this.existing(accountId);
    const write = this.accounts.passwordWrite(accountId, await this.hasher.hash(newPassword));
    await this.tokens.changeAccount(accountId, 'password-changed', [write], options);
    this.events.emit('password.changed', { accountId });
  }

  /**
   * Gives the account a new login name, under the same rules as at sign-up (normalised, unique,
   * the username policy). Its tokens stay valid (they carry the id, not the name); the old
   * name's lockout counter is forgotten and the new name starts its own.
   * @throws InvalidInputError, ConflictError (taken), NotFoundError.
   */
  async rename(id: string | number, newUsername: string): Promise<void> {
    const accountId = String(id);
    const { display, key } = normaliseUsername(newUsername);
    const problem = this.usernameProblem(display);
    if (problem) throw new InvalidInputError(problem);
    const account = await this.existing(accountId);
    await this.accounts.rename(accountId, display, key);
    if (account.usernameKey !== key) await this.lockout.forget(account.usernameKey);
    this.events.emit('account.renamed', { accountId });
  }

  /** Disables the account (no more logins) and revokes every token of it. */
  async disable(id: string | number): Promise<void> {
    const accountId = String(id);
    await this.existing(accountId);
    await this.accounts.setDisabled(accountId, true);
    await this.tokens.revokeAllForAccount(accountId, 'account-disabled');
    this.events.emit('account.disabled', { accountId });
  }

  /** Lets a disabled account log in again (its old tokens stay revoked). */
  async enable(id: string | number): Promise<void> {
    const accountId = String(id);
    await this.existing(accountId);
    await this.accounts.setDisabled(accountId, false);
    this.events.emit('account.enabled', { accountId });
  }

  /**
   * Deletes the account with every row the module keeps about it (secret key, token records,
   * TOTP, recovery codes, lockout counter), and refuses every token of it at once, on every
   * instance: the revocation is recorded in the revocation log (which outlives the account)
   * and published before the rows go. With the application's own users table, the account is
   * the application's user row: pass `manager` to delete it inside a transaction that first
   * removes the application's own rows that reference it. Deleting the row by hand skips the
   * revocation: a token an instance has already verified would keep working until it expires.
   * When a user deletes their own account, call it only after re-authentication, with the
   * request's principal as `session` (see `AccountChangeOptions`).
   * @throws NotFoundError when there is no such account; ConflictError for a `session` that
   *         has ended (nothing is deleted).
   */
  async delete(
    id: string | number,
    { manager, session }: InTransaction & AccountChangeOptions = {},
  ): Promise<void> {
    const accountId = String(id);
    const account = await this.existing(accountId, manager);
    await this.tokens.revokeAllForAccount(accountId, 'account-deleted', manager, { session });
    // The foreign keys cascade to every other table of the module.
    await this.accounts.delete(accountId, manager);
    await this.lockout.forget(account.usernameKey);
    this.events.emit('account.deleted', { accountId });
  }

  /** Why a username cannot be registered under the configured policy, or `null`. */
  usernameProblem(display: string): string | null {
    return usernameProblem(display, this.options.usernames);
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

  private async existing(id: string, manager?: EntityManager): Promise<AccountRecord> {
    const account = await this.accounts.findById(id, manager);
    if (!account) throw new NotFoundError('No such account');
    return account;
  }
}

function taken(): ConflictError {
  return new ConflictError('That username is taken');
}
