import { Entity, PrimaryColumn, Column } from 'typeorm';
import { accountIdColumn } from '../accounts/account-entities.js';
import { AccountRelation, type AccountRef } from '../accounts/account-state.entity.js';
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

  @AccountRelation('one-to-one', 'tfa_secret_keys')
  account?: AccountRef;

  /** HMAC-SHA-256 of the key, hex. */
  @Column({ name: 'key_hash', type: 'varchar', length: 64 })
  keyHash!: string;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
