import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { LockoutService } from '../lockout/lockout.service.js';
import { RevocationLog } from '../revocation/revocation-log.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import type { ClaimSet } from './claims.util.js';
import { TokenIssuer, type IssueFor } from './token-issuer.service.js';
import { TokenPruner } from './token-pruner.service.js';
import { TokenRevoker } from './token-revoker.service.js';
import type {
  AccountChangeOptions,
  IssueOptions,
  RevocationReason,
  TokenPair,
} from './token.types.js';
import type { ChainedWrite } from '../database/raw-query.js';

/**
 * The module's tokens, for an application that writes its own routes: issue, refresh, revoke
 * one token, a login or every token of an account, and prune expired records. Each job is done
 * by its own class (`TokenIssuer`, `TokenRevoker`, `TokenPruner`); this is their one door.
 */
@Injectable()
export class TokenService {
  constructor(
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly issuer: TokenIssuer,
    private readonly revoker: TokenRevoker,
    private readonly pruner: TokenPruner,
    private readonly log: RevocationLog,
    private readonly lockout: LockoutService,
  ) {}

  /**
   * Issues an access token and a refresh token for `account`, starting a new family
   * (a login). Both rows are committed before the tokens are returned. Pass the account as
   * read when its factors were checked (the `AccountRecord` a login returns, with `tokenEpoch`
   * and `row`): a revoke-all that lands between that check and the issue withdraws the new
   * tokens. The `claims` option is applied to `row` (read now when not given). With
   * `options.jkt` (from `DpopProofGuard`) the pair is bound to the client's DPoP key.
   * @throws InvalidCredentialsError when the account was revoked, disabled or deleted meanwhile.
   */

  issue(account: IssueFor, options?: IssueOptions): Promise<TokenPair> {
    return this.issuer.issue(account, options);
  }

  /**
   * Spends `refreshToken` and returns a new pair in the same family. A refresh token works
   * once: presenting a spent one again is taken as theft and revokes the whole family.
   * Of two requests racing with one token, at most one wins; a logout or revoke-all racing
   * with it always wins. A refresh token bound to a DPoP key needs `options.jkt` of that key
   * (from `DpopProofGuard`); its new pair stays bound to it.
   * @throws InvalidRefreshTokenError for any token that is not a live refresh token.
   * @throws InvalidDpopProofError for a bound refresh token without a proof by its key.
   */

  refresh(refreshToken: string, options?: IssueOptions): Promise<TokenPair> {
    return this.issuer.refresh(refreshToken, options);
  }

  /**
   * Revokes one token by `jti`. Revoking a refresh token that a refresh has already spent
   * revokes its whole family instead, so that a revocation racing a refresh still ends the
   * login. Returns false when there was nothing live to revoke.
   */

  revoke(jti: string, reason: RevocationReason = 'revoked'): Promise<boolean> {
    return this.revoker.revoke(jti, reason);
  }

  /**
   * Revokes a token given as a string (RFC 7009): its signature must check out against
   * the key ring, and it may be expired. Unknown or invalid tokens are ignored.
   * @param ownerId when set, only a token of this account is revoked.
   */

  revokeToken(token: string, ownerId?: string): Promise<void> {
    return this.revoker.revokeToken(token, ownerId);
  }

  /** Revokes every token of the login (family) that `familyId` names, present and to come. */

  revokeFamily(familyId: string, reason: RevocationReason = 'revoked'): Promise<void> {
    return this.revoker.revokeFamily(familyId, reason);
  }

  /**
   * Revokes every token of an account, issued so far or being issued right now: after a
   * password change, a secret-key rotation, a disable, or on demand. With the `manager` of a
   * transaction, the revocation is written in it (and undone by its rollback); this instance,
   * the others through Redis, and the revocation log they poll (written apart, except on
   * SQLite) have it at once either way. With `options.session` (the request's principal), the
   * revocation happens only while that login is live (see `AccountChangeOptions`).
   * @throws ConflictError when `options.session` is given and that login has ended.
   */

  revokeAllForAccount(
    accountId: string,
    reason: RevocationReason = 'revoked',
    manager?: EntityManager,
    options: AccountChangeOptions = {},
  ): Promise<void> {
    return this.revoker.revokeAllForAccount(accountId, reason, manager, options);
  }

  /**
   * Writes `writes` in one step with the revocation of every token of the account: all or
   * nothing, and with `options.session` only while that login is live. For the module's own
   * services (a change of a factor); not part of the public API.
   * @internal
   */
  changeAccount(
    accountId: string,
    reason: RevocationReason,
    writes: ChainedWrite[],
    options: AccountChangeOptions = {},
  ): Promise<void> {
    return this.revoker.revokeAllForAccount(accountId, reason, undefined, {
      session: options.session,
      writes,
    });
  }

  /**
   * Deletes what nobody can use any more, each concern its own rows: token records expired more
   * than `prune.graceSeconds` ago (in batches of `prune.batchSize`) with their empty families,
   * spent revocation-log records and idle lockout counters. Runs every
   * `prune.intervalSeconds`; call it from your own scheduler when that is 0. Returns the number
   * of token rows deleted.
   */
  async pruneExpired(): Promise<number> {
    const deleted = await this.pruner.prune();
    await this.log.prune(Math.floor(Date.now() / 1000));
    await this.lockout.prune(this.options.prune.graceSeconds * 1000);
    return deleted;
  }

  /** Signature, `typ` and registered claims of a token (no revocation check). */

  verifyClaims(token: string, typ: string): ClaimSet | null {
    return this.issuer.verifyClaims(token, typ);
  }
}
