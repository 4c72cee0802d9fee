import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager, type ObjectLiteral, type Repository } from 'typeorm';
import { isUniqueViolation } from '../database/dialect.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { Account, type SecondFactorKind } from './account.entity.js';
import type { TwoFactorEntityClass } from '../options/two-factor-auth.options.js';
import { ownAccounts, type ResolvedAccounts } from './account-entities.js';
import { AccountState, accountStateEntity } from './account-state.entity.js';
import { normaliseUsername } from './username.util.js';

/** An account as the module sees it, whichever table holds it. */
export interface AccountRecord {
  /** The id's string form (the token's `sub`). */
  id: string;
  /** The login name as stored. */
  username: string;
  /** The login name normalised: what lockout counts and lookups compare. */
  usernameKey: string;
  passwordHash: string;
  disabled: boolean;
  secondFactor: SecondFactorKind;
  /** See `Account.tokenEpoch` and `Account.tokensValidAfter`. */
  tokenEpoch: number;
  tokensValidAfter: number;
  /** The row of the accounts entity: the application's own user, or the module's `Account`. */
  row: object;
}

/** A row of the per-account state: `Account` itself, or `AccountState` with its app account. */
export type AccountStateRow = Account | (AccountState & { account?: object });

/** The relation path that loads an account with a token record or family in one query. */
export type AccountRelations = { account: true | { account: true } };

/**
 * The accounts port: the only place that reads or writes accounts. Its TypeORM default serves
 * both stores: the module's `Account` (id, name, hash, flags and token marks in one row) and an
 * application's own users table (`accounts` option), whose id, name, hash and disabled flag the
 * module reads through the mapped fields while its own marks live in `AccountState`.
 */
@Injectable()
export class AccountStore {
  private readonly own: ResolvedAccounts | undefined;
  /** Loads the account of a token record or family (`relations` of a find). */
  readonly relations: AccountRelations;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.own = ownAccounts();
    this.relations = { account: this.own ? { account: true } : true };
  }

  /** True when the application brings its own users table. */
  get external(): boolean {
    return this.own !== undefined;
  }

  /** The repository of the per-account state (`Account` or `AccountState`: same field names). */
  states(manager?: EntityManager): Repository<Account | AccountState> {
    const target = accountStateEntity();
    return (manager ?? this.dataSource.manager).getRepository<Account | AccountState>(target);
  }

  /** The account whose normalised login name is `key`, with a second factor, or `null`. */
  async findByUsernameKey(key: string): Promise<AccountRecord | null> {
    if (!this.own) {
      const account = await this.dataSource.getRepository(Account).findOne({
        where: { usernameKey: key },
      });
      return account && this.fromState(account);
    }
    const state = await this.dataSource.getRepository(AccountState).findOne({
      where: { account: { [this.own.fields.username]: key } } as never,
      relations: { account: true },
    });
    return state && this.fromState(state);
  }

  /** The account `id` (with a second factor), or `null`. */
  async findById(id: string, manager?: EntityManager): Promise<AccountRecord | null> {
    const state = await this.states(manager).findOne({
      where: { id },
      ...(this.own ? { relations: { account: true } } : {}),
    });
    return state && this.fromState(state);
  }

  /** The account of a state row loaded with `relations`, or `null` when it is gone. */
  fromState(state: AccountStateRow | null | undefined): AccountRecord | null {
    if (!state) return null;
    if (!this.own) {
      const account = state as Account;
      return {
        ...this.marks(account),
        username: account.username,
        usernameKey: account.usernameKey,
        passwordHash: account.passwordHash,
        disabled: account.disabled,
        row: account,
      };
    }
    const fields = this.own!.fields;
    const row = (state as { account?: ObjectLiteral }).account;
    if (!row) return null;
    const username = String(row[fields.username] ?? '');
    return {
      ...this.marks(state),
      username,
      usernameKey: normaliseUsername(username).key,
      passwordHash: String(row[fields.passwordHash] ?? ''),
      disabled: fields.disabled !== undefined && Boolean(row[fields.disabled]),
      row,
    };
  }

  private marks(state: Account | AccountState) {
    return {
      id: String(state.id),
      secondFactor: state.secondFactor,
      tokenEpoch: state.tokenEpoch,
      tokensValidAfter: state.tokensValidAfter,
    };
  }

  /** Stores a new password hash. @throws NotFoundError */
  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.updateAccount(id, 'passwordHash', passwordHash);
  }

  /** Sets the disabled flag. @throws NotFoundError; ConflictError when no field holds it. */
  async setDisabled(id: string, disabled: boolean): Promise<void> {
    if (this.own && this.own.fields.disabled === undefined) {
      throw new ConflictError(
        'Accounts cannot be disabled: map a boolean column as accounts.fields.disabled',
      );
    }
    await this.updateAccount(id, 'disabled', disabled);
  }

  /**
   * Gives the account a new login name (already normalised and checked).
   * @throws ConflictError when another account has it; NotFoundError when there is no account.
   */
  async rename(id: string, display: string, key: string): Promise<void> {
    if (await this.nameTaken(key, id)) throw usernameTaken();
    try {
      if (this.own) await this.updateAccount(id, 'username', key);
      else await this.updateRow(Account, 'id', id, { username: display, usernameKey: key });
    } catch (error) {
      if (isUniqueViolation(error)) throw usernameTaken();
      throw error;
    }
  }

  /** Whether an account other than `exceptId` has the login name `key`. */
  async nameTaken(key: string, exceptId?: string): Promise<boolean> {
    const found = this.own
      ? await this.dataSource
          .getRepository(this.own.entity)
          .findOne({ where: { [this.own.fields.username]: key } })
      : await this.dataSource.getRepository(Account).findOne({ where: { usernameKey: key } });
    if (!found) return false;
    const id = this.own ? (found as ObjectLiteral)[this.own.fields.id] : (found as Account).id;
    return String(id) !== exceptId;
  }

  /**
   * Starts the module's state of an account of the application's table (its second factor
   * is about to be created), in `manager`'s transaction when given. The default store keeps
   * this state in the `Account` row, created with it.
   * @throws NotFoundError when the application's table has no such account; ConflictError when
   *         it already has a second factor.
   */
  async enrol(id: string, manager?: EntityManager): Promise<void> {
    if (!this.own) return;
    const m = manager ?? this.dataSource.manager;
    const exists = await m
      .getRepository(this.own.entity)
      .exists({ where: { [this.own.fields.id]: id } });
    if (!exists) throw new NotFoundError('No such account');
    const now = Date.now();
    try {
      await m.getRepository(AccountState).insert({
        id,
        secondFactor: 'secret-key',
        tokenEpoch: 0,
        tokensValidAfter: 0,
        createdAt: now,
        updatedAt: now,
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError('This account already has a second factor');
      }
      throw error;
    }
  }

  /**
   * Deletes the account's row (and, by the foreign keys' cascade, every row of the module
   * about it). With the application's own table, that is the application's user row.
   */
  async delete(id: string, manager?: EntityManager): Promise<void> {
    const m = manager ?? this.dataSource.manager;
    if (this.own) await m.getRepository(this.own.entity).delete({ [this.own.fields.id]: id });
    else await m.getRepository(Account).delete({ id });
  }

  private async updateAccount(
    id: string,
    field: 'passwordHash' | 'disabled' | 'username',
    value: string | boolean,
  ): Promise<void> {
    if (!this.own) {
      await this.updateRow(Account, 'id', id, { [field]: value, updatedAt: Date.now() });
      return;
    }
    const column = this.own.fields[field]!;
    await this.updateRow(this.own.entity, this.own.fields.id, id, { [column]: value });
  }

  private async updateRow(
    entity: TwoFactorEntityClass,
    idField: string,
    id: string,
    values: ObjectLiteral,
  ): Promise<void> {
    const repository = this.dataSource.getRepository<ObjectLiteral>(entity);
    const result = await repository.update({ [idField]: id }, values);
    // MySQL counts changed rows, not matched ones: a value set twice is not a missing account.
    if (result.affected === 0 && !(await repository.exists({ where: { [idField]: id } }))) {
      throw new NotFoundError('No such account');
    }
  }
}

function usernameTaken(): ConflictError {
  return new ConflictError('That username is taken');
}
