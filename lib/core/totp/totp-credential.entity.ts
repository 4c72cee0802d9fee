import { Entity, PrimaryColumn, Column } from 'typeorm';
import { accountIdColumn } from '../accounts/account-entities.js';
import { AccountRelation, type AccountRef } from '../accounts/account-state.entity.js';
import { InstantColumn } from '../database/instant.column.js';

export type TotpStatus = 'pending' | 'active';

/**
 * An account's TOTP secret, encrypted with AES-256-GCM (the key id is stored so keys can
 * rotate). `pending` until the owner confirms a first code; then `active`.
 */
@Entity({ name: 'tfa_totp_credentials' })
export class TotpCredential {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column(accountIdColumn('account_id'))
  accountId!: string;

  @AccountRelation('one-to-one', 'tfa_totp_credentials')
  account?: AccountRef;

  /** base64url(iv) . base64url(tag) . base64url(ciphertext) */
  @Column({ name: 'secret_ciphertext', type: 'varchar', length: 255 })
  secretCiphertext!: string;

  @Column({ name: 'key_id', type: 'varchar', length: 64 })
  keyId!: string;

  @Column({ type: 'varchar', length: 8 })
  status!: TotpStatus;

  /** The time step of the last accepted code; a code of this step or earlier never works again. */
  @InstantColumn({ name: 'last_used_step', default: 0 })
  lastUsedStep!: number;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
