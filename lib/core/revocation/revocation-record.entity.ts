import { Entity, PrimaryColumn, Column, Index } from 'typeorm';
import { InstantColumn } from '../database/instant.column.js';

/** What a revocation record revokes: one access token, or every token of an account. */
export type RevocationKind = 'token' | 'account';

/**
 * The revocation log the instances poll: only what the guard needs (revoked access tokens and
 * account cut-offs), each stamped by the database clock (`recorded_at`), never by an instance's
 * own clock. No foreign key: the record of a deleted account must outlive the account.
 */
@Entity({ name: 'tfa_revocations' })
@Index('IDX_tfa_revocations_recorded_at', ['recordedAt'])
@Index('IDX_tfa_revocations_exp', ['exp'])
export class RevocationRecord {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 8 })
  kind!: RevocationKind;

  /** The `jti` of a revoked access token, or the id of an account. */
  @Column({ type: 'varchar', length: 36 })
  subject!: string;

  /** For an account: tokens issued before this instant (epoch ms) are revoked. */
  @InstantColumn({ name: 'valid_after', nullable: true })
  validAfter!: number | null;

  /** Epoch seconds after which the record can refuse nothing more (and is pruned). */
  @InstantColumn()
  exp!: number;

  /** Database clock, epoch ms, when the record was written: the pollers' cursor. */
  @InstantColumn({ name: 'recorded_at' })
  recordedAt!: number;
}
