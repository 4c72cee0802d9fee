import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, In, IsNull, LessThan, type Repository } from 'typeorm';
import { Account } from '../accounts/account.entity.js';
import { InjectTwoFactorOptions } from '../common/inject.decorators.js';
import { AuditEvents } from '../events/audit-events.service.js';
import { invalidRefreshToken } from '../common/http.util.js';
import { KeyRing } from '../keys/key-ring.js';
import { LoginAttempt } from '../lockout/login-attempt.entity.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from '../two-factor-auth.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';
import { IssuedToken, type IssuedTokenType } from './issued-token.entity.js';
import { RevocationView } from './revocation-view.service.js';
import { checkClaims, type ClaimSet } from './claims.util.js';
import type { RevocationReason, TokenPair } from './token.types.js';

/** Issues, refreshes, revokes and prunes tokens. Every issued token has a row first. */
@Injectable()
export class TokenService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly tokens: Repository<IssuedToken>;
  private readonly accounts: Repository<Account>;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revocations: RevocationView,
    private readonly events: AuditEvents,
  ) {
    this.tokens = dataSource.getRepository(IssuedToken);
    this.accounts = dataSource.getRepository(Account);
  }

  onModuleInit(): void {
    const every = this.options.prune.intervalSeconds;
    if (every > 0) {
      this.pruneTimer = setInterval(() => {
        this.pruneExpired().catch((e: Error) => this.logger.warn(`Pruning failed: ${e.message}`));
      }, every * 1000);
      this.pruneTimer.unref();
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.pruneTimer);
  }

  /**
   * Issues an access token and a refresh token for `account`, starting a new family
   * (a login). Both rows are committed before the tokens are returned.
   */
  async issue(account: Pick<Account, 'id'>): Promise<TokenPair> {
    const familyId = randomUUID();
    const { pair, accessJti } = await this.issuePair(account.id, familyId, null);
    this.events.emit('token.issued', { accountId: account.id, jti: accessJti, familyId });
    return pair;
  }

  /**
   * Spends `refreshToken` and returns a new pair in the same family. A refresh token works
   * once: presenting a spent one again is taken as theft and revokes the whole family.
   * Of two requests racing with one token, at most one wins.
   * @throws 401 for any token that is not a live refresh token.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const claims = this.verifyClaims(refreshToken, REFRESH_TOKEN_TYP);
    if (!claims) throw invalidRefreshToken();
    const newRefreshJti = randomUUID();
    const now = Date.now();
    const spent = await this.tokens.update(
      { jti: claims.jti, type: 'refresh', sub: claims.sub, revokedAt: IsNull() },
      { revokedAt: now, revokedReason: 'rotated', replacedBy: newRefreshJti },
    );
    const record = await this.tokens.findOne({ where: { jti: claims.jti } });
    if (spent.affected !== 1 || !record) {
      if (record?.type === 'refresh' && record.replacedBy !== null) {
        // A spent token again. Marking it first lets an exchange racing with this one see
        // the re-use after it has written its new pair (see below).
        this.logger.warn(`Refresh token re-used; revoking its family ${record.familyId}`);
        this.events.emit('refresh.reused', {
          accountId: record.accountId,
          familyId: record.familyId,
          jti: record.jti,
        });
        await this.tokens.update({ jti: record.jti }, { revokedReason: 'reuse-detected' });
        await this.revokeFamily(record.familyId, 'reuse-detected');
      }
      throw invalidRefreshToken();
    }
    const account = await this.accounts.findOne({ where: { id: record.accountId } });
    if (!account || account.disabled || claims.iat < Math.floor(account.tokensValidAfter / 1000)) {
      throw invalidRefreshToken();
    }
    const { pair, accessJti } = await this.issuePair(
      account.id,
      record.familyId,
      record.jti,
      newRefreshJti,
    );
    // A re-use of the same token, running concurrently, may have revoked the family before
    // the new rows existed. Either it saw them, or this read sees its mark: never neither.
    const spentNow = await this.tokens.findOne({
      select: { jti: true, revokedReason: true },
      where: { jti: record.jti },
    });
    if (spentNow?.revokedReason === 'reuse-detected') {
      await this.revokeFamily(record.familyId, 'reuse-detected');
      throw invalidRefreshToken();
    }
    this.events.emit('token.refreshed', {
      accountId: account.id,
      jti: accessJti,
      familyId: record.familyId,
    });
    return pair;
  }

  /** Revokes one token by `jti` (and nothing else). Returns false when there was none to revoke. */
  async revoke(jti: string, reason: RevocationReason = 'revoked'): Promise<boolean> {
    const now = Date.now();
    const result = await this.tokens.update(
      { jti, revokedAt: IsNull() },
      { revokedAt: now, revokedReason: reason },
    );
    const row = await this.tokens.findOne({
      select: { jti: true, exp: true, accountId: true },
      where: { jti },
    });
    if (row) await this.revocations.publish({ tokens: [[row.jti, row.exp]], accounts: [] });
    if (row && result.affected === 1) {
      this.events.emit('token.revoked', { jtis: [row.jti], accountId: row.accountId, reason });
    }
    return result.affected === 1;
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

  /** Revokes every token of the login (family) that `familyId` names. */
  async revokeFamily(familyId: string, reason: RevocationReason = 'revoked'): Promise<void> {
    const now = Date.now();
    await this.tokens.update(
      { familyId, revokedAt: IsNull() },
      { revokedAt: now, revokedReason: reason },
    );
    const rows = await this.tokens.find({
      select: { jti: true, exp: true, accountId: true },
      where: { familyId },
    });
    await this.revocations.publish({ tokens: rows.map((r) => [r.jti, r.exp]), accounts: [] });
    this.events.emit('token.revoked', {
      jtis: rows.map((r) => r.jti),
      accountId: rows[0]?.accountId ?? null,
      reason,
    });
  }

  /**
   * Revokes every token of an account, issued so far: after a password change, a secret-key
   * rotation, a disable, or on demand.
   */
  async revokeAllForAccount(
    accountId: string,
    reason: RevocationReason = 'revoked',
  ): Promise<void> {
    // Rows are marked revoked and their jtis broadcast; the account cut-off (compared with
    // iat, in whole seconds) also covers tokens this instance has not seen. A login made
    // later in the same second keeps working: its iat equals the cut-off's second.
    const now = Date.now();
    await this.accounts.update({ id: accountId }, { tokensValidAfter: now, updatedAt: now });
    await this.tokens.update(
      { accountId, revokedAt: IsNull() },
      { revokedAt: now, revokedReason: reason },
    );
    const rows = await this.tokens.find({
      select: { jti: true, exp: true },
      where: { accountId, revokedAt: now },
    });
    await this.revocations.publish({
      tokens: rows.map((r) => [r.jti, r.exp]),
      accounts: [[accountId, now]],
    });
    this.events.emit('token.revoked', { jtis: rows.map((r) => r.jti), accountId, reason });
  }

  /**
   * Deletes token records that expired more than `prune.graceSeconds` ago, and stale
   * lockout counters, in batches of `prune.batchSize`. Returns the number of token rows deleted.
   */
  async pruneExpired(): Promise<number> {
    const cutoff = Math.floor(Date.now() / 1000) - this.options.prune.graceSeconds;
    const take = this.options.prune.batchSize;
    let deleted = 0;
    for (;;) {
      const batch = await this.tokens.find({
        select: { jti: true },
        where: { exp: LessThan(cutoff) },
        take,
      });
      if (batch.length === 0) break;
      await this.tokens.delete({ jti: In(batch.map((b) => b.jti)) });
      deleted += batch.length;
      if (batch.length < take) break;
    }
    const idle = Date.now() - this.options.prune.graceSeconds * 1000;
    await this.dataSource
      .getRepository(LoginAttempt)
      .delete({ lockedUntil: LessThan(idle), windowStart: LessThan(idle) });
    return deleted;
  }

  /** Signature, `typ` and registered claims of a token (no revocation check). */
  verifyClaims(token: string, typ: string): ClaimSet | null {
    const verified = this.keyRing.verify(token, typ);
    return verified ? checkClaims(verified.payload, this.options) : null;
  }

  private async issuePair(
    accountId: string,
    familyId: string,
    parentJti: string | null,
    refreshJti: string = randomUUID(),
  ): Promise<{ pair: TokenPair; accessJti: string }> {
    const { accessTokenTtl, refreshTokenTtl } = this.options;
    const now = Date.now();
    const iat = Math.floor(now / 1000);
    const access = this.record(
      'access',
      randomUUID(),
      accountId,
      iat,
      accessTokenTtl,
      familyId,
      parentJti,
      now,
    );
    const refresh = this.record(
      'refresh',
      refreshJti,
      accountId,
      iat,
      refreshTokenTtl,
      familyId,
      parentJti,
      now,
    );
    await this.tokens.insert([access, refresh]);
    const pair: TokenPair = {
      access_token: this.sign(ACCESS_TOKEN_TYP, access),
      token_type: 'Bearer',
      expires_in: accessTokenTtl,
      refresh_token: this.sign(REFRESH_TOKEN_TYP, refresh),
      refresh_expires_in: refreshTokenTtl,
    };
    return { pair, accessJti: access.jti };
  }

  private record(
    type: IssuedTokenType,
    jti: string,
    accountId: string,
    iat: number,
    ttl: number,
    familyId: string,
    parentJti: string | null,
    now: number,
  ): IssuedToken {
    return this.tokens.create({
      jti,
      accountId,
      type,
      iss: this.options.issuer,
      sub: accountId,
      aud: this.options.audience ?? null,
      kid: this.keyRing.signer.kid,
      iat,
      nbf: iat,
      exp: iat + ttl,
      familyId,
      parentJti,
      replacedBy: null,
      revokedAt: null,
      revokedReason: null,
      createdAt: now,
    });
  }

  private sign(typ: string, row: IssuedToken): string {
    const payload: Record<string, unknown> = {
      iss: row.iss,
      sub: row.sub,
      ...(row.aud ? { aud: row.aud } : {}),
      iat: row.iat,
      nbf: row.nbf,
      exp: row.exp,
      jti: row.jti,
    };
    return this.keyRing.sign(typ, payload);
  }
}
