import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager, type Repository } from 'typeorm';
import type { Account } from '../accounts/account.entity.js';
import type { AccountState } from '../accounts/account-state.entity.js';
import { AccountStore } from '../accounts/account.store.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { retryOnConflict } from '../database/conflict-retry.js';
import { RawQuery, wentThrough, type ChainedWrite } from '../database/raw-query.js';
import { ConflictError } from '../errors.js';
import { dialectOf } from '../database/dialect.js';
import { AuditEvents } from '../events/audit-events.service.js';
import { KeyRing } from '../keys/key-ring.js';
import { RevocationLog, type RevocationEvent } from '../revocation/revocation-log.service.js';
import { RevocationView } from '../revocation/revocation-view.service.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from './token.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { IssuedToken } from './issued-token.entity.js';
import type { ChangeSession, RevocationReason } from './token.types.js';

/**
 * A change of how an account logs in, made in one step with its revocation: `writes` apply
 * with the move of the account's token epoch, all or nothing, and with `session` only while
 * that login is live (see `AccountChangeOptions`).
 */
export interface AccountChange {
  session?: ChangeSession;
  writes?: ChainedWrite[];
}

/**
 * Revokes tokens: one token, a login (family), or every token of an account. The mark (the
 * family's `revoked_at`, the account's token epoch) is written before the rows, so an issuer
 * racing with it either is found by the row update or finds the mark (see `TokenIssuer`). Each
 * revocation is written to the revocation log (for the other instances' poll) and published
 * (this instance's view, and Redis).
 */
@Injectable()
export class TokenRevoker {
  private readonly tokens: Repository<IssuedToken>;
  private readonly accounts: Repository<Account | AccountState>;
  private readonly raw: RawQuery;
  private readonly sqlite: boolean;
  /** Moves an account's token epoch and cut-off (`Account` or `AccountState`). */
  private readonly epochSql: string;
  /** `epochSql` only while a login (family) of the account is live: not revoked, same epoch. */
  private readonly sessionEpochSql: string;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revocations: RevocationView,
    private readonly log: RevocationLog,
    private readonly events: AuditEvents,
    accounts: AccountStore,
  ) {
    this.tokens = dataSource.getRepository(IssuedToken);
    this.accounts = accounts.states();
    // The writes are hand-written (see `RawQuery`): on SQLite they then never join a
    // transaction of the application, whose rollback would bring a revoked token back.
    this.raw = new RawQuery(dataSource);
    this.sqlite = dialectOf(dataSource) === 'sqlite';
    const states = this.accounts.metadata;
    const column = (property: string) => this.raw.column(states, property);
    this.epochSql =
      `UPDATE ${this.raw.table(states)} SET ${column('tokenEpoch')} = ${column('tokenEpoch')} + 1, ` +
      `${column('tokensValidAfter')} = ?, ${column('updatedAt')} = ? WHERE ${column('id')} = ?`;
    this.sessionEpochSql =
      `${this.epochSql} AND ${column('tokenEpoch')} = (SELECT f.epoch FROM tfa_token_families f ` +
      'WHERE f.id = ? AND f.account_id = ? AND f.revoked_at IS NULL)';
  }

  /**
   * Revokes one token by `jti`. Revoking a refresh token that a refresh has already spent
   * revokes its whole family instead, so that a revocation racing a refresh still ends the
   * login. Returns false when there was nothing live to revoke.
   */
  async revoke(jti: string, reason: RevocationReason = 'revoked'): Promise<boolean> {
    const now = Date.now();
    const affected = await retryOnConflict(() =>
      this.raw.run(
        'UPDATE tfa_issued_tokens SET revoked_at = ?, revoked_reason = ? ' +
          'WHERE jti = ? AND revoked_at IS NULL',
        [now, reason, jti],
      ),
    );
    const row = await this.tokens.findOne({
      select: {
        jti: true,
        exp: true,
        accountId: true,
        type: true,
        replacedBy: true,
        familyId: true,
      },
      where: { jti },
    });
    if (!row) return false;
    if (affected !== 1) {
      if (row.type === 'refresh' && row.replacedBy !== null) {
        await this.revokeFamily(row.familyId, reason);
        return true;
      }
      return false;
    }
    if (row.type === 'access') await this.announce({ tokens: [[row.jti, row.exp]], accounts: [] });
    this.events.emit('token.revoked', { jtis: [row.jti], accountId: row.accountId, reason });
    return true;
  }
  /**
   * Revokes a token given as a string (RFC 7009): its signature must check out against
   * the key ring, and it may be expired. Unknown or invalid tokens are ignored.
   * @param ownerId when set, only a token of this account is revoked.
   */
  async revokeToken(token: string, ownerId?: string): Promise<void> {
    const verified =
      this.keyRing.verify(token, ACCESS_TOKEN_TYP) ?? this.keyRing.verify(token, REFRESH_TOKEN_TYP);
    const jti = verified?.payload.jti;
    const sub = verified?.payload.sub;
    if (typeof jti !== 'string' || typeof sub !== 'string') return;
    if (ownerId !== undefined && sub !== ownerId) return;
    await this.revoke(jti, 'revoked');
  }
  /** Revokes every token of the login (family) that `familyId` names, present and to come. */
  async revokeFamily(familyId: string, reason: RevocationReason = 'revoked'): Promise<void> {
    const now = Date.now();
    // The mark first: a refresh racing this one reads it after writing its new pair.
    await this.raw.chain([
      {
        sql: 'UPDATE tfa_token_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
        params: [now, familyId],
      },
      {
        sql:
          'UPDATE tfa_issued_tokens SET revoked_at = ?, revoked_reason = ? ' +
          'WHERE family_id = ? AND revoked_at IS NULL',
        params: [now, reason, familyId],
      },
    ]);
    const rows = await this.tokens.find({
      select: { jti: true, exp: true, accountId: true, type: true },
      where: { familyId },
    });
    await this.announce({ tokens: liveAccess(rows), accounts: [] });
    this.events.emit('token.revoked', {
      jtis: rows.map((r) => r.jti),
      accountId: rows[0]?.accountId ?? null,
      reason,
    });
  }
  /**
   * Revokes every token of an account, issued so far or being issued right now: after a
   * password change, a secret-key rotation, a disable, or on demand. With `change`, its writes
   * go in with the epoch's move, all or nothing, and with `change.session` only while that
   * login is live (else `ConflictError`, and nothing is written or revoked).
   */
  async revokeAllForAccount(
    accountId: string,
    reason: RevocationReason = 'revoked',
    manager?: EntityManager,
    change: AccountChange = {},
  ): Promise<void> {
    // The epoch first (counted by the database, no clock involved): a login or refresh in
    // flight reads it after writing its rows. The cut-off (compared with iat, in whole
    // seconds) covers tokens this instance has not seen; a login made later in the same
    // second keeps working, as it should.
    const now = Date.now();
    const { session } = change;
    const epoch: ChainedWrite = session
      ? {
          sql: this.sessionEpochSql,
          params: [now, now, accountId, session.familyId, accountId],
          need: 1,
        }
      : { sql: this.epochSql, params: [now, now, accountId] };
    const first = [epoch, ...(change.writes ?? [])];
    const writes: ChainedWrite[] = [
      {
        sql:
          'UPDATE tfa_token_families SET revoked_at = ? ' +
          'WHERE account_id = ? AND revoked_at IS NULL',
        params: [now, accountId],
      },
      {
        sql:
          'UPDATE tfa_issued_tokens SET revoked_at = ?, revoked_reason = ? ' +
          'WHERE account_id = ? AND revoked_at IS NULL',
        params: [now, reason, accountId],
      },
    ];
    // The change and the epoch commit together (the epoch row's lock serialises racing
    // changes on the servers); the marks of the families and tokens follow, as for any
    // revoke-all, in the caller's transaction if there is one.
    if (!manager && (session || change.writes)) {
      if (!wentThrough(first, await this.raw.atomicChain(first))) throw changedMeanwhile();
    } else {
      writes.unshift(...first);
    }
    if (!wentThrough(writes, await this.raw.chain(writes, manager))) throw changedMeanwhile();
    // Read where they were written: in the caller's transaction, the rows are not yet visible
    // elsewhere, and the cut-off alone spares a token issued in the same second.
    const rows = await (manager ? manager.getRepository(IssuedToken) : this.tokens).find({
      select: { jti: true, exp: true, type: true },
      where: { accountId, revokedAt: now },
    });
    await this.announce(
      { tokens: liveAccess(rows), accounts: [this.cutOff(accountId, now)] },
      manager,
    );
    this.events.emit('token.revoked', { jtis: rows.map((r) => r.jti), accountId, reason });
  }
  /** Writes a revocation to the log (the other instances' poll) and applies it here and by Redis. */
  private async announce(event: RevocationEvent, manager?: EntityManager): Promise<void> {
    // The log record commits at once, so that instances without Redis poll it whenever the
    // caller's transaction commits (their cursor never waits for a late commit). On SQLite,
    // whose one connection the caller's transaction holds, it can only be written inside it.
    await this.log.record(event, this.sqlite ? manager : undefined);
    await this.revocations.publish(event);
  }
  private cutOff(accountId: string, now: number): [string, number, number] {
    return [accountId, now, Math.floor(now / 1000) + this.options.refreshTokenTtl + 60];
  }
}

/** The access tokens among `rows` that have not expired: all the guard's view needs. */
function liveAccess(rows: Pick<IssuedToken, 'jti' | 'exp' | 'type'>[]): [string, number][] {
  const now = Math.floor(Date.now() / 1000);
  return rows.filter((r) => r.type === 'access' && r.exp > now - 60).map((r) => [r.jti, r.exp]);
}

/** A change made through a login that ended, or racing a change that applied first. */
function changedMeanwhile(): ConflictError {
  return new ConflictError(
    'The account changed while this request ran, or its login has ended: log in again',
  );
}
