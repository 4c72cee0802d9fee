import { Injectable, Optional, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import {
  BEARER_CHALLENGE,
  dpopChallenge,
  invalidToken,
  RetryAfterException,
  setResponseHeader,
} from '../common/http.util.js';
import { UnavailableError } from '../../core/errors.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import { bearerFromAuthorizationHeader } from '../strategies/bearer.extractor.js';
import { JwtTwoFactorStrategy } from '../strategies/jwt-two-factor.strategy.js';
import type { AccessDecision, DpopRefusal } from '../../core/tokens/access-token.verifier.js';
import type { AuthenticatedAccount } from '../../core/tokens/token.types.js';
import { JWT_TWO_FACTOR_STRATEGY } from '../strategies/strategy-names.js';
import { authenticateWith } from './passport-authenticate.util.js';
import type { DpopHttpRequest } from '../dpop/dpop-request.util.js';

function isDpopRefusal(info: unknown): info is DpopRefusal {
  return typeof info === 'object' && info !== null && 'algs' in info && 'error' in info;
}

/** The request parts the guard reads and writes; Express and Fastify requests both fit. */
export interface GuardedRequest extends DpopHttpRequest {
  user?: unknown;
}

/**
 * Protects routes with an access token: `@UseGuards(JwtTwoFactorGuard)`, or as the global
 * `APP_GUARD` together with `@Public()`. A Bearer token comes as `Authorization: Bearer`; a
 * DPoP-bound token (RFC 9449) only as `Authorization: DPoP` with a `DPoP` proof of the request.
 * A refused token gets `401` with `WWW-Authenticate: Bearer error="invalid_token"` (or, for
 * DPoP, `DPoP error="invalid_token"` / `"invalid_dpop_proof"` / `"use_dpop_nonce"` with the
 * accepted `algs`) and a body that does not say which check failed; when revocations cannot be
 * checked the answer is `503` with `Retry-After`, never a pass.
 *
 * The token is read once (`getToken`) and decided once (`JwtTwoFactorStrategy.decide`): a token
 * this instance has verified before costs no I/O. Subclasses may override `getToken` (where the
 * token comes from), `isPublic` (which routes are open), `handleRequest` (as with any
 * `AuthGuard`) and `refuse` (what a refusal answers). The strategy's `validate()` may enrich or
 * refuse the principal.
 */
@Injectable()
export class JwtTwoFactorGuard extends AuthGuard(JWT_TWO_FACTOR_STRATEGY) {
  /** `@Public()` per controller class and handler, read once (metadata never changes). */
  private readonly publicRoutes = new WeakMap<object, WeakMap<object, boolean>>();

  constructor(
    private readonly reflector: Reflector,
    @Optional() private readonly strategy?: JwtTwoFactorStrategy,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.isPublic(context)) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<GuardedRequest>();
    if (!this.strategy) {
      // Outside the module's injector (a guard built by hand): the strategy, by name.
      request.user = await authenticateWith(
        JWT_TWO_FACTOR_STRATEGY,
        request,
        http.getResponse(),
        (err, user, info, status) =>
          this.handleRequest(err, user as AuthenticatedAccount | false, info, context, status),
      );
      return true;
    }
    const pending = this.strategy.decideRequest(request, this.getToken(request));
    const decision = pending instanceof Promise ? await pending : pending;
    request.user = this.settle(decision, context);
    return true;
  }

  /**
   * The access token of the request, or `null`. By default the `Authorization` header only
   * (`Bearer`, RFC 6750 §2.1, or `DPoP`, RFC 9449 §7.1), never the query string, a cookie or
   * the body.
   */
  protected getToken(request: GuardedRequest): string | null {
    return bearerFromAuthorizationHeader(request);
  }

  /** Whether the route is marked `@Public()`; override to open routes by other rules. */
  protected isPublic(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byHandler = this.publicRoutes.get(controller);
    if (!byHandler) this.publicRoutes.set(controller, (byHandler = new WeakMap()));
    let open = byHandler.get(handler);
    if (open === undefined) {
      open =
        this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_KEY, [
          handler,
          controller,
        ]) === true;
      byHandler.set(handler, open);
    }
    return open;
  }

  override handleRequest<TUser = AuthenticatedAccount>(
    err: unknown,
    user: TUser | false,
    info: unknown,
    context: ExecutionContext,
    _status?: unknown,
  ): TUser {
    if (err instanceof UnavailableError) this.refuse(context, 'unavailable');
    if (err || !user) this.refuse(context, 'refused', isDpopRefusal(info) ? info : undefined);
    return user;
  }

  /**
   * Answers a request whose token was refused (`401` with the RFC 6750 challenge, or the
   * RFC 9449 one when `dpop` says why) or could not be checked (`503` with `Retry-After`). It
   * must throw; override to answer differently.
   */
  protected refuse(
    context: ExecutionContext,
    outcome: 'refused' | 'unavailable',
    dpop?: DpopRefusal,
  ): never {
    const response = context.switchToHttp().getResponse<unknown>();
    if (outcome === 'unavailable') {
      const unavailable = new UnavailableError();
      setResponseHeader(response, 'Retry-After', String(unavailable.retryAfterSeconds));
      throw new RetryAfterException(503, unavailable.message, unavailable.retryAfterSeconds);
    }
    if (dpop) {
      setResponseHeader(response, 'WWW-Authenticate', dpopChallenge(dpop.error, dpop.algs));
      if (dpop.nonce) setResponseHeader(response, 'DPoP-Nonce', dpop.nonce);
    } else {
      setResponseHeader(response, 'WWW-Authenticate', BEARER_CHALLENGE);
    }
    throw invalidToken();
  }

  private settle(decision: AccessDecision, context: ExecutionContext): unknown {
    if (decision.outcome === 'unavailable') {
      return this.handleRequest(new UnavailableError(), false, undefined, context);
    }
    const user = decision.outcome === 'accepted' && this.strategy!.validate(decision.principal);
    const info = decision.outcome === 'refused' ? decision.dpop : undefined;
    return this.handleRequest(null, user || false, info, context);
  }
}
