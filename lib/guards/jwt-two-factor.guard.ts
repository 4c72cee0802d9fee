import {
  HttpException,
  HttpStatus,
  Injectable,
  Optional,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { BEARER_CHALLENGE, invalidToken, setResponseHeader } from '../common/http.util.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import { bearerFromAuthorizationHeader } from '../strategies/bearer.extractor.js';
import { JwtTwoFactorStrategy } from '../strategies/jwt-two-factor.strategy.js';
import { AccessTokenVerifier } from '../tokens/access-token.verifier.js';
import type { AuthenticatedAccount } from '../tokens/token.types.js';
import { JWT_TWO_FACTOR_STRATEGY } from '../two-factor-auth.constants.js';
import { authenticateWith } from './passport-authenticate.util.js';

/**
 * Protects routes with a Bearer access token: `@UseGuards(JwtTwoFactorGuard)`, or as the
 * global `APP_GUARD` together with `@Public()`. A refused token gets `401` with
 * `WWW-Authenticate: Bearer error="invalid_token"` and a body that does not say which check
 * failed; when revocations cannot be checked the answer is `503`, never a pass.
 */
@Injectable()
export class JwtTwoFactorGuard extends AuthGuard(JWT_TWO_FACTOR_STRATEGY) {
  /** `@Public()` per controller class and handler, read once (metadata never changes). */
  private readonly publicRoutes = new WeakMap<object, WeakMap<object, boolean>>();

  constructor(
    private readonly reflector: Reflector,
    @Optional() private readonly strategy?: JwtTwoFactorStrategy,
    @Optional() private readonly verifier?: AccessTokenVerifier,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.isPublic(context)) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<{
      user?: unknown;
      headers: Record<string, string | string[] | undefined>;
    }>();
    // Fast path: a token this instance has fully verified before needs only its expiry and the
    // in-memory revocation view checked, with no I/O; passport adds nothing to that.
    const known = this.knownPrincipal(request);
    if (known) {
      request.user = this.handleRequest(null, known, undefined, context);
      return true;
    }
    request.user = await authenticateWith(
      this.strategy ?? JWT_TWO_FACTOR_STRATEGY,
      request,
      http.getResponse(),
      (err, user, info, status) =>
        this.handleRequest(err, user as AuthenticatedAccount | false, info, context, status),
    );
    return true;
  }

  /** The principal of an already verified, live token, or `undefined` (take the full path). */
  private knownPrincipal(request: {
    headers: Record<string, string | string[] | undefined>;
  }): AuthenticatedAccount | undefined {
    if (!this.verifier || !this.strategy) return undefined;
    const token = bearerFromAuthorizationHeader(request);
    if (token === null) return undefined;
    try {
      const principal = this.verifier.verifyKnown(token);
      return (principal && this.strategy.validate(principal)) || undefined;
    } catch {
      // A stale revocation view: the full path answers it (503 with Retry-After).
      return undefined;
    }
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
    _info: unknown,
    context: ExecutionContext,
    _status?: unknown,
  ): TUser {
    if (err instanceof HttpException && err.getStatus() === HttpStatus.SERVICE_UNAVAILABLE) {
      setResponseHeader(context.switchToHttp().getResponse(), 'Retry-After', '1');
      throw err;
    }
    if (err || !user) {
      setResponseHeader(context.switchToHttp().getResponse(), 'WWW-Authenticate', BEARER_CHALLENGE);
      throw invalidToken();
    }
    return user;
  }
}
