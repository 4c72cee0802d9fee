import { Injectable, Optional } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { UnavailableError } from '../../core/errors.js';
import {
  AccessTokenVerifier,
  REFUSED,
  type AccessDecision,
} from '../../core/tokens/access-token.verifier.js';
import { DpopAccess } from '../dpop/dpop-access.js';
import type { DpopHttpRequest } from '../dpop/dpop-request.util.js';
import type { AuthenticatedAccount } from '../../core/tokens/token.types.js';
import { JWT_TWO_FACTOR_STRATEGY } from './strategy-names.js';
import { bearerFromAuthorizationHeader } from './bearer.extractor.js';

type StrategyRequest = DpopHttpRequest;

/** What passport gives a strategy instance while it handles one request. */
interface PassportActions {
  success(user: AuthenticatedAccount): void;
  fail(challenge?: unknown, status?: number): void;
  error(err: unknown): void;
}

/**
 * Passport strategy for access tokens, built on `passport-jwt`'s `Strategy` (its options and
 * the Bearer extraction contract), with verification done by the module's key ring instead
 * of `jsonwebtoken`: `jsonwebtoken` has no EdDSA, cannot bind one algorithm to each `kid`, and
 * re-verifies every request. Here a token is checked in full (signature with the algorithm of
 * the key its `kid` names, claims, its record) the first time it is seen; afterwards, on every
 * request, only its expiry and the in-memory revocation view, without I/O. A token bound to
 * a DPoP key (RFC 9449) also needs the `DPoP` scheme and a proof of the request by that key.
 */
@Injectable()
export class JwtTwoFactorStrategy extends PassportStrategy(Strategy, JWT_TWO_FACTOR_STRATEGY) {
  constructor(
    private readonly verifier: AccessTokenVerifier,
    @Optional() private readonly dpop?: DpopAccess,
  ) {
    super({
      jwtFromRequest: bearerFromAuthorizationHeader,
      // Never consulted: authenticate() below verifies with the key ring.
      secretOrKeyProvider: (_req: unknown, _token: unknown, done: (err: Error) => void) =>
        done(new Error('verified by AccessTokenVerifier')),
    });
  }

  /**
   * The decision about one access token (`null`: none presented), shared by passport and by
   * `JwtTwoFactorGuard`: a plain value for a token verified before (no I/O), else a promise.
   */
  decide(token: string | null): AccessDecision | Promise<AccessDecision> {
    return this.verifier.decide(token);
  }

  /**
   * The decision about `token` as presented by `request`: `decide`, then the DPoP checks (the
   * scheme, and for a bound token a proof of this request by its key). Without the module's
   * `DpopAccess` (a strategy built by hand) a bound token is refused.
   */
  decideRequest(
    request: DpopHttpRequest,
    token: string | null,
  ): AccessDecision | Promise<AccessDecision> {
    const decision = this.decide(token);
    return decision instanceof Promise
      ? decision.then((d) => this.confirm(d, request, token))
      : this.confirm(decision, request, token);
  }

  private confirm(
    decision: AccessDecision,
    request: DpopHttpRequest,
    token: string | null,
  ): AccessDecision | Promise<AccessDecision> {
    if (this.dpop) return this.dpop.confirm(decision, request, token);
    return decision.outcome === 'accepted' && decision.principal.jkt !== undefined
      ? REFUSED
      : decision;
  }

  override authenticate(this: JwtTwoFactorStrategy & PassportActions, req: StrategyRequest): void {
    const decision = this.decideRequest(req, bearerFromAuthorizationHeader(req));
    if (decision instanceof Promise) {
      decision.then(
        (settled) => this.settle(settled),
        (error: unknown) => this.error(error),
      );
    } else {
      this.settle(decision);
    }
  }

  private settle(this: JwtTwoFactorStrategy & PassportActions, decision: AccessDecision): void {
    if (decision.outcome === 'unavailable') return this.error(new UnavailableError());
    const user = decision.outcome === 'accepted' && this.validate(decision.principal);
    if (user) this.success(user);
    // The DPoP refusal, if any, reaches the guard's handleRequest() as `info`.
    else this.fail(decision.outcome === 'refused' ? decision.dpop : undefined, 401);
  }

  /** The principal is already complete; a subclass may enrich it, or refuse it with `null`. */
  validate(principal: AuthenticatedAccount): AuthenticatedAccount | null {
    return principal;
  }
}
