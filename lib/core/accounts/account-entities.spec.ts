import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Account } from './account.entity.js';
import {
  accountIdColumn,
  accountsEntity,
  configureAccounts,
  ownAccounts,
  resetAccounts,
} from './account-entities.js';
import { accountStateEntity, AccountState } from './account-state.entity.js';

@Entity({ name: 'spec_users' })
class User {
  @PrimaryGeneratedColumn()
  id!: number;
  @Column({ type: 'varchar', length: 254 })
  email!: string;
  @Column({ type: 'varchar', length: 255 })
  passwordHash!: string;
}

@Entity({ name: 'spec_members' })
class Member {
  @PrimaryGeneratedColumn('uuid')
  id!: string;
  @Column({ type: 'varchar', length: 254 })
  username!: string;
  @Column({ type: 'varchar', length: 255 })
  passwordHash!: string;
}

class NotAnEntity {
  id!: number;
}

describe('the accounts entity (accounts option)', () => {
  afterEach(() => resetAccounts());

  it('is the module’s Account by default, with varchar(36) account ids', () => {
    expect(configureAccounts(undefined)).toBeUndefined();
    expect(accountsEntity()).toBe(Account);
    expect(accountStateEntity()).toBe(Account);
    const column = accountIdColumn('account_id');
    expect([column.type, column.length]).toEqual(['varchar', 36]);
  });

  it('makes the app’s entity the account store, its id type the type of every account id column', () => {
    const resolved = configureAccounts({ entity: User, fields: { username: 'email' } });
    expect(resolved?.fields).toEqual({
      id: 'id',
      username: 'email',
      passwordHash: 'passwordHash',
      disabled: undefined,
    });
    expect(ownAccounts()).toBe(resolved);
    expect(accountsEntity()).toBe(User);
    expect(accountStateEntity()).toBe(AccountState);
    const column = accountIdColumn('account_id');
    expect([column.type, column.length]).toEqual([Number, undefined]);
  });

  it.each([
    [{ entity: NotAnEntity }, 'accounts.entity', 'is not decorated with @Entity()'],
    [{ entity: Account }, 'accounts.entity', 'leave `accounts` out'],
    [
      { entity: User, fields: { username: 'mail' } },
      'accounts.fields.username',
      'names "mail", which is not a column of User',
    ],
    [
      { entity: User, fields: { id: 'email', username: 'email' } },
      'accounts.fields.id',
      'not the primary column of User',
    ],
    [
      { entity: User, fields: { username: 'email', disabled: 'blocked' } },
      'accounts.fields.disabled',
      'names "blocked"',
    ],
  ])('refuses %o, naming %s', (accounts, option, problem) => {
    expect(() => configureAccounts(accounts as never)).toThrow(`option "${option}"`);
    expect(() => configureAccounts(accounts as never)).toThrow(problem);
    expect(ownAccounts()).toBeUndefined();
  });

  it('serves one entity per process: the same again is fine, another is refused', () => {
    configureAccounts({ entity: User, fields: { username: 'email' } });
    expect(() => configureAccounts({ entity: User, fields: { username: 'email' } })).not.toThrow();
    expect(() => configureAccounts({ entity: Member })).toThrow(
      'is Member, but this process already uses User',
    );
  });
});
