import { Entity, PrimaryColumn, Column, Index } from 'typeorm';
import { accountIdColumn } from '../accounts/account-entities.js';
import { AccountRelation, type AccountRef } from '../accounts/account-state.entity.js';
import { InstantColumn } from '../database/instant.column.js';

export type IssuedTokenType = 'access' | 'refresh';

/**
 * One row per issued JWT, committed before the token leaves the server, so that any
 * token can be revoked and a refresh token can be spent exactly once.
 */
@Entity({ name: 'tfa_issued_tokens' })
@Index('IDX_tfa_issued_tokens_account', ['accountId'])
@Index('IDX_tfa_issued_tokens_family', ['familyId'])
@Index('IDX_tfa_issued_tokens_exp', ['exp'])
@Index('IDX_tfa_issued_tokens_revoked_at', ['revokedAt'])
export class IssuedToken {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  jti!: string;

  @Column(accountIdColumn('account_id'))
  accountId!: string;

  @AccountRelation('many-to-one', 'tfa_issued_tokens')
  account?: AccountRef;

  @Column({ type: 'varchar', length: 8 })
  type!: IssuedTokenType;

  @Column({ type: 'varchar', length: 512 })
  iss!: string;

  @Column({ type: 'varchar', length: 36 })
  sub!: string;

  @Column({ type: 'varchar', length: 512, nullable: true })
  aud!: string | null;

  @Column({ type: 'varchar', length: 128 })
  kid!: string;

  /** JWT NumericDates (seconds). */
  @InstantColumn()
  iat!: number;

  @InstantColumn()
  nbf!: number;

  @InstantColumn()
  exp!: number;

  /** Every token descended from one login shares its family. */
  @Column({ name: 'family_id', type: 'varchar', length: 36 })
  familyId!: string;

  /** The refresh token this one was issued in exchange for. */
  @Column({ name: 'parent_jti', type: 'varchar', length: 36, nullable: true })
  parentJti!: string | null;

  /** For a spent refresh token: the refresh token that replaced it. */
  @Column({ name: 'replaced_by', type: 'varchar', length: 36, nullable: true })
  replacedBy!: string | null;

  /** Epoch ms of revocation (a spent refresh token counts as revoked). */
  @InstantColumn({ name: 'revoked_at', nullable: true })
  revokedAt!: number | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: string | null;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
