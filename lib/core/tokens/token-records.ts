import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AccountStore, type AccountJoin, type AccountMarks } from '../accounts/account.store.js';
import { num, RawQuery, str, type ChainCheck, type RawRow } from '../database/raw-query.js';
import type { ClaimSet } from './claims.util.js';
import type { IssuedTokenType } from './issued-token.entity.js';

/** A live token record and its account, as one query returns them. */
export interface LiveRecord {
  familyId: string;
  aud: string | null;
  account: AccountMarks;
}

/** A refresh token's record with its family and account, read before it is spent. */
export interface RefreshRecord {
  type: string;
  sub: string;
  accountId: string;
  familyId: string;
  revokedAt: number | null;
  replacedBy: string | null;
  /** The account when the family is live and the account usable with the family's epoch. */
  liveAccount: AccountMarks | null;
  /** The module's own `Account` row, read in the same query (the default store only). */
  accountRow: object | null;
}

/**
 * The reads of the hot paths, one hand-written query each (see `RawQuery`): the first sight of
 * an access token, a refresh, and the check a login or refresh makes after writing its tokens.
 * Each joins the account through `AccountStore`, so it reads the module's own `Account` or an
 * application's users table alike.
 */
@Injectable()
export class TokenRecords {
  private readonly raw: RawQuery;
  private readonly recordSql: string;
  private readonly refreshSql: string;
  private readonly familySql: string;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly accounts: AccountStore,
  ) {
    this.raw = new RawQuery(dataSource);
    const record = (onToken: AccountJoin) =>
      't.type, t.sub, t.kid, t.exp, t.aud, t.family_id, t.revoked_at, t.replaced_by, ' +
      `t.account_id, f.revoked_at AS family_revoked_at, f.epoch AS family_epoch, ${onToken.columns} ` +
      'FROM tfa_issued_tokens t LEFT JOIN tfa_token_families f ON f.id = t.family_id ' +
      `${onToken.join} WHERE t.jti = ?`;
    this.recordSql = record(accounts.accountJoin('t'));
    // A refresh hands the account's row to the `claims` hook: read in the same query.
    this.refreshSql = record(accounts.accountRowJoin('t'));
    const onFamily = accounts.accountJoin('f');
    this.familySql =
      `SELECT f.revoked_at AS family_revoked_at, f.epoch AS family_epoch, ${onFamily.columns} ` +
      `FROM tfa_token_families f ${onFamily.join} WHERE f.id = ?`;
  }

  /**
   * The record of a token whose signature and claims already checked out, if it is still live:
   * of the right type, the same `sub`, `kid` and `exp` as the token, not revoked, of an enabled
   * account whose cut-off (`tokensValidAfter`) the token does not precede. `null` for anything
   * else. Database errors propagate (callers answer them with 503).
   */
  async live(claims: ClaimSet, kid: string, type: IssuedTokenType): Promise<LiveRecord | null> {
    const row = await this.raw.row(`SELECT ${this.recordSql}`, [claims.jti]);
    if (!row) return null;
    const account = this.accounts.fromJoin(row);
    const live =
      account !== null &&
      row.type === type &&
      str(row.sub) === claims.sub &&
      str(row.kid) === kid &&
      num(row.exp) === claims.exp &&
      row.revoked_at === null &&
      !account.disabled &&
      claims.iat >= Math.floor(account.tokensValidAfter / 1000);
    return live ? { familyId: str(row.family_id)!, aud: str(row.aud), account } : null;
  }

  /** A refresh token's record (whatever its state), its family and account; `null` if none. */
  async refreshRecord(jti: string): Promise<RefreshRecord | null> {
    const row = await this.raw.row(`SELECT ${this.refreshSql}`, [jti]);
    if (!row) return null;
    return {
      type: String(row.type),
      sub: str(row.sub)!,
      accountId: str(row.account_id)!,
      familyId: str(row.family_id)!,
      revokedAt: row.revoked_at === null ? null : num(row.revoked_at),
      replacedBy: str(row.replaced_by),
      liveAccount: this.liveAccountIn(row),
      accountRow: this.accounts.rowFromJoin(row),
    };
  }

  /**
   * The check a login or refresh makes once its new pair is written (`RawQuery.checkedChain`):
   * the family is not revoked, and its account exists, is enabled and has not moved its epoch
   * since the family began.
   */
  familyCheck(familyId: string): ChainCheck {
    return {
      sql: this.familySql,
      params: [familyId],
      holds: (row) => row !== null && this.liveAccountIn(row) !== null,
    };
  }

  private liveAccountIn(row: RawRow): AccountMarks | null {
    const account = this.accounts.fromJoin(row);
    return row.family_epoch !== null &&
      row.family_epoch !== undefined &&
      row.family_revoked_at === null &&
      account !== null &&
      !account.disabled &&
      account.tokenEpoch === num(row.family_epoch)
      ? account
      : null;
  }
}
