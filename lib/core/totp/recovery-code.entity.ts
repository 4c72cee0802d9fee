import { Entity, PrimaryColumn, Column, Index } from 'typeorm';
import { accountIdColumn } from '../accounts/account-entities.js';
import { AccountRelation, type AccountRef } from '../accounts/account-state.entity.js';
import { InstantColumn } from '../database/instant.column.js';

/** A single-use recovery code of a TOTP account, stored as a keyed hash. */
@Entity({ name: 'tfa_recovery_codes' })
@Index('IDX_tfa_recovery_codes_account', ['accountId'])
export class RecoveryCode {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column(accountIdColumn('account_id'))
  accountId!: string;

  @AccountRelation('many-to-one', 'tfa_recovery_codes')
  account?: AccountRef;

  /** HMAC-SHA-256 of the normalised code, hex. */
  @Column({ name: 'code_hash', type: 'varchar', length: 64 })
  codeHash!: string;

  @InstantColumn({ name: 'used_at', nullable: true })
  usedAt!: number | null;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
