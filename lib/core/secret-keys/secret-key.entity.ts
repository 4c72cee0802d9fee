import { Entity, PrimaryColumn, Column, OneToOne, JoinColumn, type Relation } from 'typeorm';
import type { Account } from '../accounts/account.entity.js';
import { accountIdColumn } from '../accounts/account-entities.js';
import { accountStateEntity, type AccountState } from '../accounts/account-state.entity.js';
import { InstantColumn } from '../database/instant.column.js';

/**
 * An account's secret key, the second factor. Only a keyed hash is stored, never the key.
 * Owning side of the one-to-one with `Account`; deleting the account deletes it.
 */
@Entity({ name: 'tfa_secret_keys' })
export class SecretKey {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column(accountIdColumn('account_id'))
  accountId!: string;

  @OneToOne(() => accountStateEntity(), { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_tfa_secret_keys_account' })
  account?: Relation<Account | AccountState>;

  /** HMAC-SHA-256 of the key, hex. */
  @Column({ name: 'key_hash', type: 'varchar', length: 64 })
  keyHash!: string;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
