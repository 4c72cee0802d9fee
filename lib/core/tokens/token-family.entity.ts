import { Entity, PrimaryColumn, Column, Index } from 'typeorm';
import { accountIdColumn } from '../accounts/account-entities.js';
import { AccountRelation, type AccountRef } from '../accounts/account-state.entity.js';
import { InstantColumn } from '../database/instant.column.js';

/**
 * One login: every token descended from it by refresh shares its family. Revoking the family
 * is one committed write that a racing refresh reads after writing its new pair, so a logout
 * always wins (see TokenService.refresh).
 */
@Entity({ name: 'tfa_token_families' })
@Index('IDX_tfa_token_families_account', ['accountId'])
export class TokenFamily {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column(accountIdColumn('account_id'))
  accountId!: string;

  @AccountRelation('many-to-one', 'tfa_token_families')
  account?: AccountRef;

  /** The account's token epoch when the login happened; a revoke-all moves the account's on. */
  @Column({ type: 'integer', default: 0 })
  epoch!: number;

  /** Epoch ms of the logout or revocation of the whole family (null: live). */
  @InstantColumn({ name: 'revoked_at', nullable: true })
  revokedAt!: number | null;

  @InstantColumn({ name: 'created_at' })
  createdAt!: number;
}
