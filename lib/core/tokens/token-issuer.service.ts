import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, In, IsNull, type Repository } from 'typeorm';
import { Account } from '../accounts/account.entity.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { InvalidCredentialsError, InvalidRefreshTokenError } from '../errors.js';
import { retryOnConflict } from '../database/conflict-retry.js';
import { AuditEvents } from '../events/audit-events.service.js';
import { KeyRing } from '../keys/key-ring.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from './token.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { checkClaims, type ClaimSet } from './claims.util.js';
import { IssuedToken, type IssuedTokenType } from './issued-token.entity.js';
import { TokenFamily } from './token-family.entity.js';
import { TokenRevoker } from './token-revoker.service.js';
import type { TokenPair } from './token.types.js';

/** What a token record is made from. */
interface RecordSpec {
  type: IssuedTokenType;
  jti: string;
  accountId: string;
  iat: number;
  ttl: number;
  familyId: string;
  parentJti: string | null;
  now: number;
}

/**
 * Issues tokens: a login's first pair, and a new pair for a spent refresh token. Every issued
 * token has a row first.
 *
 * Races with revocation are settled by write-then-check: a login or refresh writes its new rows,
 * then reads its family and the account's token epoch; a logout (family) or revoke-all (epoch)
 * writes its mark first, then revokes the rows (see `TokenRevoker`). Whichever order the
 * database sees, either the revocation finds the new rows, or the issuer sees the mark and
 * withdraws them: once a revocation has answered, no token it covers works, on any instance.
 */
@Injectable()
export class TokenIssuer {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly tokens: Repository<IssuedToken>;
  private readonly families: Repository<TokenFamily>;
  private readonly accounts: Repository<Account>;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revoker: TokenRevoker,
    private readonly events: AuditEvents,
  ) {
    this.tokens = dataSource.getRepository(IssuedToken);
    this.families = dataSource.getRepository(TokenFamily);
    this.accounts = dataSource.getRepository(Account);
  }

  /**
   * Issues an access token and a refresh token for `account`, starting a new family
   * (a login). Both rows are committed before the tokens are returned. Pass the account as
   * read when its factors were checked (with `tokenEpoch`): a revoke-all that lands between
   * that check and the issue withdraws the new tokens.
   * @throws InvalidCredentialsError when the account was revoked, disabled or deleted meanwhile.
   */
  async issue(
    account: Pick<Account, 'id'> & Partial<Pick<Account, 'tokenEpoch'>>,
  ): Promise<TokenPair> {
    const epoch =
      account.tokenEpoch ??
      (
        await this.accounts.findOne({
          select: { id: true, tokenEpoch: true },
          where: { id: account.id },
        })
      )?.tokenEpoch;
    if (epoch === undefined) throw new InvalidCredentialsError();
    const familyId = randomUUID();
    const { pair, accessJti, jtis } = await this.unlessAccountGone(account.id, async () => {
      await retryOnConflict(() =>
        this.families.insert({
          id: familyId,
          accountId: account.id,
          epoch,
          revokedAt: null,
          createdAt: Date.now(),
        }),
      );
      return this.issuePair(account.id, familyId, null);
    });
    if (!(await this.liveAccountOf(familyId))) {
      await this.withdraw(jtis);
      throw new InvalidCredentialsError();
    }
    this.events.emit('token.issued', { accountId: account.id, jti: accessJti, familyId });
    return pair;
  }
  /**
   * Spends `refreshToken` and returns a new pair in the same family. A refresh token works
   * once: presenting a spent one again is taken as theft and revokes the whole family.
   * Of two requests racing with one token, at most one wins; a logout or revoke-all racing
   * with it always wins.
   * @throws InvalidRefreshTokenError for any token that is not a live refresh token.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const claims = this.verifyClaims(refreshToken, REFRESH_TOKEN_TYP);
    if (!claims) throw new InvalidRefreshTokenError();
    const newRefreshJti = randomUUID();
    const spent = await retryOnConflict(() =>
      this.tokens.update(
        { jti: claims.jti, type: 'refresh', sub: claims.sub, revokedAt: IsNull() },
        { revokedAt: Date.now(), revokedReason: 'rotated', replacedBy: newRefreshJti },
      ),
    );
    const record = await this.tokens.findOne({ where: { jti: claims.jti } });
    if (spent.affected !== 1 || !record) {
      if (record?.type === 'refresh' && record.replacedBy !== null) {
        this.logger.warn(`Refresh token re-used; revoking its family ${record.familyId}`);
        this.events.emit('refresh.reused', {
          accountId: record.accountId,
          familyId: record.familyId,
          jti: record.jti,
        });
        // The re-used token says why in its record, for whoever investigates.
        await retryOnConflict(() =>
          this.tokens.update({ jti: record.jti }, { revokedReason: 'reuse-detected' }),
        );
        await this.revoker.revokeFamily(record.familyId, 'reuse-detected');
      }
      throw new InvalidRefreshTokenError();
    }
    // One read: the family is live, and so is its account (enabled, same epoch).
    const account = await this.liveAccountOf(record.familyId);
    if (!account || claims.iat < Math.floor(account.tokensValidAfter / 1000)) {
      throw new InvalidRefreshTokenError();
    }
    const { pair, accessJti, jtis } = await this.unlessAccountGone(account.id, () =>
      this.issuePair(account.id, record.familyId, record.jti, newRefreshJti),
    );
    // A logout, re-use or revoke-all that ran meanwhile either revoked the new rows, or left
    // its mark for this read to find: never neither.
    if (!(await this.liveAccountOf(record.familyId))) {
      await this.withdraw(jtis);
      throw new InvalidRefreshTokenError();
    }
    this.events.emit('token.refreshed', {
      accountId: account.id,
      jti: accessJti,
      familyId: record.familyId,
    });
    return pair;
  }
  /** Signature, `typ` and registered claims of a token (no revocation check). */
  verifyClaims(token: string, typ: string): ClaimSet | null {
    const verified = this.keyRing.verify(token, typ);
    return verified ? checkClaims(verified.payload, this.options) : null;
  }
  /**
   * The family's account when the family is not revoked and its account exists, is enabled and
   * has not moved its epoch since the family began; else `null`.
   */
  private async liveAccountOf(familyId: string): Promise<Account | null> {
    const family = await this.families.findOne({
      where: { id: familyId },
      relations: { account: true },
    });
    const account = family?.account;
    return family &&
      account &&
      family.revokedAt === null &&
      !account.disabled &&
      account.tokenEpoch === family.epoch
      ? account
      : null;
  }

  /**
   * Runs `write`; if it fails because the account was deleted meanwhile (a foreign key), the
   * answer is the one failure of a refused login or refresh, not a server error.
   */
  private async unlessAccountGone<T>(accountId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (await this.accounts.exists({ where: { id: accountId } })) throw error;
      throw new InvalidRefreshTokenError();
    }
  }
  /** Revokes rows written for tokens that are never handed out. */
  private async withdraw(jtis: string[]): Promise<void> {
    await retryOnConflict(() =>
      this.tokens.update(
        { jti: In(jtis), revokedAt: IsNull() },
        { revokedAt: Date.now(), revokedReason: 'withdrawn' },
      ),
    );
  }
  private async issuePair(
    accountId: string,
    familyId: string,
    parentJti: string | null,
    refreshJti: string = randomUUID(),
  ): Promise<{ pair: TokenPair; accessJti: string; jtis: string[] }> {
    const { accessTokenTtl, refreshTokenTtl } = this.options;
    const now = Date.now();
    const iat = Math.floor(now / 1000);
    const common = { accountId, iat, familyId, parentJti, now };
    const access = this.record({
      ...common,
      type: 'access',
      jti: randomUUID(),
      ttl: accessTokenTtl,
    });
    const refresh = this.record({
      ...common,
      type: 'refresh',
      jti: refreshJti,
      ttl: refreshTokenTtl,
    });
    await retryOnConflict(() => this.tokens.insert([access, refresh]));
    const pair: TokenPair = {
      access_token: this.sign(ACCESS_TOKEN_TYP, access),
      token_type: 'Bearer',
      expires_in: accessTokenTtl,
      refresh_token: this.sign(REFRESH_TOKEN_TYP, refresh),
      refresh_expires_in: refreshTokenTtl,
    };
    return { pair, accessJti: access.jti, jtis: [access.jti, refresh.jti] };
  }
  private record(spec: RecordSpec): IssuedToken {
    return this.tokens.create({
      jti: spec.jti,
      accountId: spec.accountId,
      type: spec.type,
      iss: this.options.issuer,
      sub: spec.accountId,
      aud: this.options.audience ?? null,
      kid: this.keyRing.signer.kid,
      iat: spec.iat,
      nbf: spec.iat,
      exp: spec.iat + spec.ttl,
      familyId: spec.familyId,
      parentJti: spec.parentJti,
      replacedBy: null,
      revokedAt: null,
      revokedReason: null,
      createdAt: spec.now,
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
