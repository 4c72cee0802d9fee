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
import { JwtTwoFactorStrategy } from '../strategies/jwt-two-factor.strategy.js';
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
  constructor(
    private readonly reflector: Reflector,
    @Optional() private readonly strategy?: JwtTwoFactorStrategy,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.isPublic(context)) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<{ user?: unknown }>();
    request.user = await authenticateWith(
      this.strategy ?? JWT_TWO_FACTOR_STRATEGY,
      request,
      http.getResponse(),
      (err, user, info, status) =>
        this.handleRequest(err, user as AuthenticatedAccount | false, info, context, status),
    );
    return true;
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
