import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { InjectTwoFactorOptions } from '../common/inject.decorators.js';
import { KeyRing } from '../keys/key-ring.js';
import { ACCESS_TOKEN_TYP } from '../two-factor-auth.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';
import { checkClaims } from './claims.util.js';
import { findLiveRecord, type LiveRecord } from './token-record.util.js';
import { RevocationView } from '../revocation/revocation-view.service.js';
import type { AuthenticatedAccount } from './token.types.js';

/**
 * Decides whether an access token is good, as cheaply as correctness allows.
 *
 * The first time a token is seen, its signature and claims are checked and its record is read
 * (it must exist, be an unrevoked access token of that `sub`, of a usable account). The result
 * is remembered under the exact token string, so later requests with the same token cost a map
 * lookup plus the checks that can change over time: expiry and the revocation view. No query
 * runs for a token already seen; a stale revocation view refuses everything with 503.
 */
@Injectable()
export class AccessTokenVerifier {
  private readonly verified = new Map<string, AuthenticatedAccount>();
  private readonly pending = new Map<string, Promise<AuthenticatedAccount | null>>();
  private readonly maxCached: number;
  private readonly tolerance: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revocations: RevocationView,
  ) {
    this.maxCached = options.revocation.verifiedCacheSize;
    this.tolerance = options.clockTolerance;
  }

  /**
   * The answer for a token seen before, without any I/O: the principal, `null` (refused), or
   * `undefined` when the token is new and `verify()` must be awaited.
   * @throws ServiceUnavailableException when the revocation view is stale.
   */
  verifyKnown(token: string): AuthenticatedAccount | null | undefined {
    const now = Date.now();
    if (!this.revocations.isFresh(now)) throw unavailable();
    const principal = this.verified.get(token);
    if (principal === undefined) return undefined;
    if ((principal.exp + this.tolerance) * 1000 <= now) {
      this.verified.delete(token);
      return null;
    }
    return this.revocations.isRevoked(principal.jti, principal.id, principal.iat)
      ? null
      : principal;
  }

  /** Full check of a token; `null` when it must be refused. */
  async verify(token: string): Promise<AuthenticatedAccount | null> {
    const known = this.verifyKnown(token);
    if (known !== undefined) return known;
    let inFlight = this.pending.get(token);
    if (!inFlight) {
      inFlight = this.firstSight(token).finally(() => this.pending.delete(token));
      this.pending.set(token, inFlight);
    }
    return inFlight;
  }

  private async firstSight(token: string): Promise<AuthenticatedAccount | null> {
    const jws = this.keyRing.verify(token, ACCESS_TOKEN_TYP);
    const claims = jws && checkClaims(jws.payload, this.options);
    if (!jws || !claims) return null;
    let row: LiveRecord | null;
    try {
      row = await findLiveRecord(this.dataSource, claims, jws.header.kid, 'access');
    } catch {
      throw unavailable();
    }
    if (!row) return null;
    const account = row.account;
    const principal: AuthenticatedAccount = {
      id: account.id,
      username: account.username,
      jti: claims.jti,
      iat: claims.iat,
      exp: claims.exp,
      familyId: row.familyId,
    };
    if (this.revocations.isRevoked(principal.jti, principal.id, principal.iat)) return null;
    this.remember(token, principal);
    return principal;
  }

  private remember(token: string, principal: AuthenticatedAccount): void {
    if (this.maxCached === 0) return;
    if (this.verified.size >= this.maxCached) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, principal);
  }
}

function unavailable(): ServiceUnavailableException {
  return new ServiceUnavailableException(
    'Authentication is temporarily unavailable; retry shortly',
  );
}
