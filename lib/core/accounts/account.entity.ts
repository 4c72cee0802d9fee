import { Entity, PrimaryColumn, Column, Index } from 'typeorm';
import { InstantColumn } from '../database/instant.column.js';

/** Which second factor an account logs in with. */
export type SecondFactorKind = 'secret-key' | 'totp';

/** A user who can log in. Credentials live in their own tables; this row holds no secret. */
@Entity({ name: 'tfa_accounts' })
@Index('IDX_tfa_accounts_valid_after', ['tokensValidAfter'])
export class Account {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  /** The username as given at sign-up (trimmed, NFC). */
  @Column({ type: 'varchar', length: 255 })
  username!: string;

  /** The normalised username (trimmed, NFC, lower case): unique. */
  @Index('UQ_tfa_accounts_username_key', { unique: true })
  @Column({ name: 'username_key', type: 'varchar', length: 255 })
  usernameKey!: string;

  /** argon2id PHC string. */
  @Column({ name: 'password_hash', type: 'varchar', length: 255 })
  passwordHash!: string;

  @Column({ type: 'boolean', default: false })
  disabled!: boolean;

  @Column({ name: 'second_factor', type: 'varchar', length: 16, default: 'secret-key' })
  secondFactor!: SecondFactorKind;

  /**
   * Counts the revoke-alls of the account (password change, key rotation, disable, …). A login
   * or refresh re-reads it after writing its tokens: if it moved meanwhile, they are withdrawn.
   */
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
