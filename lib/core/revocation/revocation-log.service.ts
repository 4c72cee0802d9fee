import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, LessThan, MoreThanOrEqual, type EntityManager } from 'typeorm';
import { databaseClockSql, dialectOf } from '../database/dialect.js';
import { RawQuery, type ChainedWrite } from '../database/raw-query.js';
import { RevocationRecord } from './revocation-record.entity.js';

/** What one revocation changes for the guard: revoked access tokens and account cut-offs. */
export interface RevocationEvent {
  /** `[jti, exp]` pairs of revoked access tokens (exp in seconds). */
  tokens: [string, number][];
  /** `[accountId, tokensValidAfter, horizon]`: cut-off (epoch ms) and when it stops mattering (s). */
  accounts: [string, number, number][];
}

/**
 * The revocation log in the database, which every instance polls. Records are stamped with the
 * database's clock, and readers take their cursor from the same clock: an instance whose own
 * clock is wrong can neither hide a revocation from the others nor miss one.
 */
@Injectable()
export class RevocationLog {
  private readonly clockSql: string;
  private readonly raw: RawQuery;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.clockSql = databaseClockSql(dialectOf(dataSource));
    this.raw = new RawQuery(dataSource);
  }

  /** Writes `event` (nothing when empty), in `manager`'s transaction when given. */
  async record(event: RevocationEvent, manager?: EntityManager): Promise<void> {
    const rows = [
      ...event.tokens.map(([jti, exp]) => ({
        id: randomUUID(),
        kind: 'token' as const,
        subject: jti,
        validAfter: null,
        exp,
      })),
      ...event.accounts.map(([accountId, validAfter, horizon]) => ({
        id: randomUUID(),
        kind: 'account' as const,
        subject: accountId,
        validAfter,
        exp: horizon,
      })),
    ];
    if (rows.length === 0) return;
    // Hand-written (see `RawQuery`): on SQLite a record never joins an application's open
    // transaction, whose rollback would keep the other instances from hearing of it. Bounded
    // batches: some drivers cap the number of bound parameters per statement.
    const writes: ChainedWrite[] = [];
    for (let i = 0; i < rows.length; i += 200) {
      const batch = rows.slice(i, i + 200);
      writes.push({
        sql:
          'INSERT INTO tfa_revocations (id, kind, subject, valid_after, exp, recorded_at) VALUES ' +
          batch.map(() => `(?, ?, ?, ?, ?, ${this.clockSql})`).join(', '),
        params: batch.flatMap((r) => [r.id, r.kind, r.subject, r.validAfter, r.exp]),
      });
    }
    await this.raw.chain(writes, manager);
  }

  /** The database clock now, epoch ms. */
  async now(): Promise<number> {
    const [row] = (await this.dataSource.query(`SELECT ${this.clockSql} AS now`)) as {
      now: string | number;
    }[];
    return Number(row.now);
  }

  /** Every record stamped at or after `since` (database clock, ms). */
  async since(since: number): Promise<RevocationEvent> {
    const rows = await this.dataSource.getRepository(RevocationRecord).find({
      select: { kind: true, subject: true, validAfter: true, exp: true },
      where: { recordedAt: MoreThanOrEqual(since) },
    });
    const event: RevocationEvent = { tokens: [], accounts: [] };
    for (const r of rows) {
      if (r.kind === 'token') event.tokens.push([r.subject, r.exp]);
      else if (r.validAfter !== null) event.accounts.push([r.subject, r.validAfter, r.exp]);
    }
    return event;
  }

  /** Deletes records that can refuse nothing any more. */
  async prune(nowSeconds: number): Promise<void> {
    await this.dataSource
      .getRepository(RevocationRecord)
      .delete({ exp: LessThan(nowSeconds - 60) });
  }
}
