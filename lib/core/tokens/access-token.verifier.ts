import { Injectable } from '@nestjs/common';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { KeyRing } from '../keys/key-ring.js';
import { ACCESS_TOKEN_TYP } from './token.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { checkClaims, extraClaims } from './claims.util.js';
import { TokenRecords, type LiveRecord } from './token-records.js';
import { RevocationView } from '../revocation/revocation-view.service.js';
import { withTimeout } from '../common/with-timeout.util.js';
import type { AuthenticatedAccount } from './token.types.js';

/**
 * Why a request was refused for DPoP's sake (RFC 9449 §7.1): the error code, the algorithms
 * proofs may use, and a fresh nonce when one is required.
 */
export interface DpopRefusal {
  readonly error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce';
  readonly algs: string;
  readonly nonce?: string;
}

/** What the module decides about one access token. */
export type AccessDecision =
  | { readonly outcome: 'accepted'; readonly principal: AuthenticatedAccount }
  | { readonly outcome: 'refused'; readonly dpop?: DpopRefusal }
  | { readonly outcome: 'unavailable' };

/** The answer when revocations cannot be checked: never a pass. */
export const UNAVAILABLE: AccessDecision = Object.freeze({ outcome: 'unavailable' });
/** The answer to every refused token, whatever check failed. */
export const REFUSED: AccessDecision = Object.freeze({ outcome: 'refused' });

type Accepted = Extract<AccessDecision, { outcome: 'accepted' }>;

/**
 * Decides whether an access token is good, as cheaply as correctness allows, in one function.
 *
 * The first time a token is seen, its signature (on libuv's thread pool for an asymmetric key)
 * and claims are checked and its record is read (it must exist, be an unrevoked access token
 * of that `sub`, of a usable account). The result
 * is remembered under the exact token string, so later requests with the same token cost a map
 * lookup plus the checks that can change over time: expiry and the revocation view. No query
 * runs for a token already seen; a stale revocation view makes every answer `unavailable`.
 */
@Injectable()
export class AccessTokenVerifier {
  private readonly verified = new Map<string, Accepted>();
  private readonly pending = new Map<string, Promise<AccessDecision>>();
  private readonly maxCached: number;
  private readonly tolerance: number;

  constructor(
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revocations: RevocationView,
    private readonly records: TokenRecords,
  ) {
    this.maxCached = options.revocation.verifiedCacheSize;
    this.tolerance = options.clockTolerance;
  }

  /**
   * The decision about `token` (`null`: no token was presented). A token this instance has
   * verified before is decided at once, without I/O (a plain value, no promise); a new one
   * gets a promise of its first full check, shared by concurrent requests with that token.
   */
  decide(token: string | null): AccessDecision | Promise<AccessDecision> {
    if (token === null) return REFUSED;
    const now = Date.now();
    if (!this.revocations.isFresh(now)) return UNAVAILABLE;
    const known = this.verified.get(token);
    if (known !== undefined) {
      const { exp, jti, id, iat } = known.principal;
      if ((exp + this.tolerance) * 1000 <= now) {
        this.verified.delete(token);
        return REFUSED;
      }
      return this.revocations.isRevoked(jti, id, iat) ? REFUSED : known;
    }
    let inFlight = this.pending.get(token);
    if (!inFlight) {
      inFlight = this.firstSight(token).finally(() => this.pending.delete(token));
      this.pending.set(token, inFlight);
    }
    return inFlight;
  }

  private async firstSight(token: string): Promise<AccessDecision> {
    // The signature on the thread pool (HMAC at once): other requests go on meanwhile.
    const jws = await this.keyRing.verifyOffThread(token, ACCESS_TOKEN_TYP);
    const claims = jws && checkClaims(jws.payload, this.options);
    if (!jws || !claims) return REFUSED;
    let live: LiveRecord | null;
    try {
      // Bounded as the view's staleness is: a database that stops answering without closing
      // its connection (a partition) makes this `unavailable`, not a request that waits for TCP.
      live = await withTimeout(
        this.records.live(claims, jws.header.kid, 'access'),
        this.options.revocation.maxStaleness,
      );
    } catch {
      return UNAVAILABLE;
    }
    if (!live) return REFUSED;
    const principal: AuthenticatedAccount = {
      id: live.account.id,
      username: live.account.username,
      jti: claims.jti,
      iat: claims.iat,
      exp: claims.exp,
      familyId: live.familyId,
      claims: extraClaims(jws.payload),
      ...(claims.jkt === undefined ? {} : { jkt: claims.jkt }),
    };
    if (this.revocations.isRevoked(principal.jti, principal.id, principal.iat)) return REFUSED;
    const accepted: Accepted = Object.freeze({ outcome: 'accepted', principal });
    this.remember(token, accepted);
    return accepted;
  }

  private remember(token: string, decision: Accepted): void {
    if (this.maxCached === 0) return;
    if (this.verified.size >= this.maxCached) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, decision);
  }
}
