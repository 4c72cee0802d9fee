import { Entity, Column, ManyToOne, OneToOne, JoinColumn, type Relation } from 'typeorm';
import { InstantColumn } from '../database/instant.column.js';
import { Account, type SecondFactorKind } from './account.entity.js';
import { accountIdColumn, accountsEntity, ownAccounts } from './account-entities.js';

/**
 * What the module keeps about an account of the application's own users table (`accounts`
 * option): which second factor it uses and the marks that revoke all its tokens. One row per
 * account that has a second factor; it goes with the account (foreign key, cascade). For the
 * default store these columns live on `Account` itself.
 */
@Entity({ name: 'tfa_account_states' })
export class AccountState {
  /**
   * The account's id, as the application's table holds it. (`@Column` with `primary`: the
   * `@PrimaryColumn` decorator copies its options at once, before the type is known.)
   */
  @Column(accountIdColumn('account_id', { primary: true }))
  id!: string;

  @OneToOne(() => accountsEntity(), { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_tfa_account_states_account' })
  account?: Relation<object>;

  @Column({ name: 'second_factor', type: 'varchar', length: 16, default: 'secret-key' })
  secondFactor!: SecondFactorKind;

  /** Counts the revoke-alls of the account; see `Account.tokenEpoch`. */
  @Column({ name: 'token_epoch', type: 'integer', default: 0 })
  tokenEpoch!: number;

  /** Tokens issued before this second (epoch ms, floored on use) are revoked. */
  @InstantColumn({ name: 'tokens_valid_after', default: 0 })
  tokensValidAfter!: number;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;

  @InstantColumn({ name: 'updated_at' })
  updatedAt!: number;
}

/** The entity the module's per-account rows reference: `Account`, or `AccountState` beside the app's own. */
export function accountStateEntity(): typeof Account | typeof AccountState {
  return ownAccounts() ? AccountState : Account;
}

/** What a row of the module's per-account tables points at: the `Account` or its `AccountState`. */
export type AccountRef = Relation<Account | AccountState>;

/**
 * The relation of a per-account table of the module (`<table>.account_id`) to the account's
 * state row, deleted with it: one decorator for the five tables that have it.
 */
export function AccountRelation(
  kind: 'one-to-one' | 'many-to-one',
  table: string,
): PropertyDecorator {
  const relation = kind === 'one-to-one' ? OneToOne : ManyToOne;
  return (target, property) => {
    JoinColumn({ name: 'account_id', foreignKeyConstraintName: `FK_${table}_account` })(
      target,
      property,
    );
    relation(() => accountStateEntity(), { onDelete: 'CASCADE', nullable: false })(
      target,
      property,
    );
  };
}
