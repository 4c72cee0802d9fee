import { HttpException, HttpStatus, Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { BEARER_CHALLENGE, invalidToken, setResponseHeader } from '../common/http.util.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import type { AuthenticatedAccount } from '../tokens/token.types.js';
import { JWT_TWO_FACTOR_STRATEGY } from '../two-factor-auth.constants.js';

/**
 * Protects routes with a Bearer access token: `@UseGuards(JwtTwoFactorGuard)`, or as the
 * global `APP_GUARD` together with `@Public()`. A refused token gets `401` with
 * `WWW-Authenticate: Bearer error="invalid_token"` and a body that does not say which check
 * failed; when revocations cannot be checked the answer is `503`, never a pass.
 */
@Injectable()
export class JwtTwoFactorGuard extends AuthGuard(JWT_TWO_FACTOR_STRATEGY) {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    if (this.isPublic(context)) return true;
    return super.canActivate(context);
  }

  /** Whether the route is marked `@Public()`; override to open routes by other rules. */
  protected isPublic(context: ExecutionContext): boolean {
    return (
      this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_KEY, [
        context.getHandler(),
        context.getClass(),
      ]) === true
    );
  }

  override handleRequest<TUser = AuthenticatedAccount>(
    err: unknown,
    user: TUser | false,
    _info: unknown,
    context: ExecutionContext,
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
