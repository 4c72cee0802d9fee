import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager, type ObjectLiteral, type Repository } from 'typeorm';
import { isUniqueViolation } from '../database/dialect.js';
import { bool, num, RawQuery, str, type ChainedWrite, type RawRow } from '../database/raw-query.js';
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

/** What the hot paths read of an account beside a token record or a family. */
export interface AccountMarks {
  id: string;
  username: string;
  disabled: boolean;
  tokenEpoch: number;
  tokensValidAfter: number;
}

/** SQL that joins the account of a row with an `account_id` column, columns aliased `acc_*`. */
export interface AccountJoin {
  join: string;
  columns: string;
}

/** A row of the per-account state: `Account` itself, or `AccountState` with its app account. */
export type AccountStateRow = Account | (AccountState & { account?: object });

/**
 * The accounts port: the only place that reads or writes accounts. Its TypeORM default serves
 * both stores: the module's `Account` (id, name, hash, flags and token marks in one row) and an
 * application's own users table (`accounts` option), whose id, name, hash and disabled flag the
 * module reads through the mapped fields while its own marks live in `AccountState`.
 */
@Injectable()
export class AccountStore {
  private readonly own: ResolvedAccounts | undefined;

  private readonly joinSql: (alias: string) => AccountJoin;
  private readonly idKind: 'integer' | 'uuid' | 'string';
  private readonly raw: RawQuery;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.own = ownAccounts();
    this.joinSql = this.own ? this.ownJoin(this.own) : defaultJoin;
    this.idKind = this.own ? idKindOf(dataSource) : 'string';
    this.raw = new RawQuery(dataSource);
  }

  /**
   * The LEFT JOIN that brings the account of `<alias>.account_id` into a hand-written SELECT
   * (see `RawQuery`), for `fromJoin`: one query on the hot paths, whichever table holds it.
   */
  accountJoin(alias: string): AccountJoin {
    return this.joinSql(alias);
  }

  /**
   * `accountJoin` that also brings, on the default store, every column of the module's
   * `Account` (aliased `acc_row_*`), so that `rowFromJoin` can hand the account's row to the
   * `claims` hook without a second query. An own users table is read by `findById` instead.
   */
  accountRowJoin(alias: string): AccountJoin {
    const join = this.joinSql(alias);
    if (this.own) return join;
    const row = ACCOUNT_COLUMNS.split(', ')
      .map((column) => `acc.${column} AS acc_row_${column}`)
      .join(', ');
    return { join: join.join, columns: `${join.columns}, ${row}` };
  }

  /**
   * The module's `Account` of a row selected with `accountRowJoin` on the default store;
   * `null` when the account is gone, or when the application brings its own users table.
   */
  rowFromJoin(row: RawRow): Account | null {
    if (this.own || str(row.acc_row_id) === null) return null;
    const columns: RawRow = {};
    for (const column of ACCOUNT_COLUMNS.split(', ')) columns[column] = row[`acc_row_${column}`];
    return accountFromRow(columns);
  }

  /** The account of a row selected with `accountJoin`, or `null` when it is gone. */
  fromJoin(row: RawRow): AccountMarks | null {
    const id = str(row.acc_id);
    if (id === null) return null;
    return {
      id,
      username: str(row.acc_username) ?? '',
      disabled: bool(row.acc_disabled),
      tokenEpoch: num(row.acc_epoch),
      tokensValidAfter: num(row.acc_valid_after),
    };
  }

  private ownJoin(own: ResolvedAccounts): (alias: string) => AccountJoin {
    const raw = new RawQuery(this.dataSource);
    const users = this.dataSource.getMetadata(own.entity);
    const column = (property: string) => `accu.${raw.column(users, property)}`;
    const table = raw.table(users);
    const disabled = own.fields.disabled === undefined ? '0' : column(own.fields.disabled);
    return (alias) => ({
      join:
        `LEFT JOIN tfa_account_states acc ON acc.account_id = ${alias}.account_id ` +
        `LEFT JOIN ${table} accu ON ${column(own.fields.id)} = acc.account_id`,
      columns:
        `${column(own.fields.id)} AS acc_id, ${column(own.fields.username)} AS acc_username, ` +
        `${disabled} AS acc_disabled, acc.token_epoch AS acc_epoch, ` +
        'acc.tokens_valid_after AS acc_valid_after',
    });
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
      // Read on every login: one plain query (see `RawQuery`).
      const row = await this.raw.row(
        `SELECT ${ACCOUNT_COLUMNS} FROM tfa_accounts WHERE username_key = ?`,
        [key],
      );
      const account = row && accountFromRow(row);
      return account && account.usernameKey === key ? this.fromState(account) : null;
    }
    const state = await this.dataSource.getRepository(AccountState).findOne({
      where: { account: { [this.own.fields.username]: key } } as never,
      relations: { account: true },
    });
    const account = this.fromState(state);
    // Exact, whatever the column's collation: MySQL's default one finds "céo" for "ceo", and
    // a name that is not the account's own must not log in to it (nor count apart from it).
    return account && account.username === key ? account : null;
  }

  /** The account `id` (with a second factor), or `null`. */
  async findById(id: string, manager?: EntityManager): Promise<AccountRecord | null> {
    if (!this.isId(id)) return null;
    if (!this.own && !manager) {
      // The default store's row, read on every refresh with a `claims` hook: one plain query.
      const row = await this.raw.row(`SELECT ${ACCOUNT_COLUMNS} FROM tfa_accounts WHERE id = ?`, [
        id,
      ]);
      const account = row && accountFromRow(row);
      return account && account.id === id ? this.fromState(account) : null;
    }
    const state = await this.states(manager).findOne({
      where: { id },
      ...(this.own ? { relations: { account: true } } : {}),
    });
    const account = this.fromState(state);
    // Only the id's own spelling: databases convert "01" or " 1" to 1, and ignore case.
    return account && account.id === id ? account : null;
  }

  /**
   * Whether `id` is spelled as the id column holds ids: its string form (1 to 36 printable
   * characters), digits only for an integer column, a lower-case UUID for a uuid column. Any
   * other spelling names no account (and never reaches the database as a malformed value).
   */
  isId(id: string): boolean {
    if (!ACCOUNT_ID.test(id)) return false;
    if (this.idKind === 'integer') return INTEGER_ID.test(id);
    if (this.idKind === 'uuid') return UUID_ID.test(id);
    return true;
  }

  /** The account of a state row (loaded with its `account` for an own users table), or `null`. */
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

  /**
   * Replaces the password hash only if it is still `current`: a login's re-hash must not undo
   * a password change that landed since the login read the old hash. Returns whether it did.
   */
  async replacePasswordHash(id: string, current: string, passwordHash: string): Promise<boolean> {
    const write = this.passwordWrite(id, passwordHash);
    return (
      (await this.raw.run(`${write.sql} AND ${write.hashColumn} = ?`, [
        ...write.params,
        current,
      ])) === 1
    );
  }

  /** The statement that stores a new password hash, for a change written with others. */
  passwordWrite(id: string, passwordHash: string): ChainedWrite & { hashColumn: string } {
    const entity = this.dataSource.getMetadata(this.own ? this.own.entity : Account);
    const column = (property: string) => this.raw.column(entity, property);
    const hashColumn = column(this.own ? this.own.fields.passwordHash : 'passwordHash');
    const idColumn = column(this.own ? this.own.fields.id : 'id');
    const stamp = this.own ? '' : `, ${column('updatedAt')} = ?`;
    return {
      sql: `UPDATE ${this.raw.table(entity)} SET ${hashColumn} = ?${stamp} WHERE ${idColumn} = ?`,
      params: this.own ? [passwordHash, id] : [passwordHash, Date.now(), id],
      hashColumn,
    };
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
    field: 'disabled' | 'username',
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

/** What `sub` and the module's account id columns can hold. */
const ACCOUNT_ID = /^[\x21-\x7e]{1,36}$/;
const INTEGER_ID = /^(0|[1-9][0-9]{0,17})$/;
const UUID_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INTEGER_TYPES = new Set([
  'int',
  'integer',
  'bigint',
  'smallint',
  'mediumint',
  'tinyint',
  'int2',
  'int4',
  'int8',
]);

/** How the application's id column holds ids (read from the DataSource's metadata). */
function idKindOf(dataSource: DataSource): 'integer' | 'uuid' | 'string' {
  const type = dataSource.getMetadata(AccountState).findColumnWithPropertyName('id')!.type;
  if (type === Number || INTEGER_TYPES.has(String(type))) return 'integer';
  return type === 'uuid' ? 'uuid' : 'string';
}

const ACCOUNT_COLUMNS =
  'id, username, username_key, password_hash, disabled, second_factor, token_epoch, ' +
  'tokens_valid_after, created_at, updated_at';

/** An `Account` entity from a row of `ACCOUNT_COLUMNS`, as TypeORM would have made it. */
function accountFromRow(row: RawRow): Account {
  return Object.assign(new Account(), {
    id: str(row.id)!,
    username: str(row.username)!,
    usernameKey: str(row.username_key)!,
    passwordHash: str(row.password_hash)!,
    disabled: bool(row.disabled),
    secondFactor: str(row.second_factor) as SecondFactorKind,
    tokenEpoch: num(row.token_epoch),
    tokensValidAfter: num(row.tokens_valid_after),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  });
}

/** The default store: everything on `tfa_accounts`. */
function defaultJoin(alias: string): AccountJoin {
  return {
    join: `LEFT JOIN tfa_accounts acc ON acc.id = ${alias}.account_id`,
    columns:
      'acc.id AS acc_id, acc.username AS acc_username, acc.disabled AS acc_disabled, ' +
      'acc.token_epoch AS acc_epoch, acc.tokens_valid_after AS acc_valid_after',
  };
}

function usernameTaken(): ConflictError {
  return new ConflictError('That username is taken');
}
