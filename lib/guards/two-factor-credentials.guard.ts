import { HttpException, Injectable, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { Account } from '../accounts/account.entity.js';
import { invalidCredentials, RetryAfterException, setResponseHeader } from '../common/http.util.js';
import { TWO_FACTOR_STRATEGY } from '../two-factor-auth.constants.js';

/**
 * Runs the credentials strategy (username + password + second factor): for applications that
 * write their own token route. On success `req.user` is the `Account`; every failure is the
 * same `401`, a locked username `429` with `Retry-After`, malformed input `400`.
 */
@Injectable()
export class TwoFactorCredentialsGuard extends AuthGuard(TWO_FACTOR_STRATEGY) {
  override handleRequest<TUser = Account>(
    err: unknown,
    user: TUser | false,
    _info: unknown,
    context: ExecutionContext,
  ): TUser {
    if (err instanceof RetryAfterException) {
      setResponseHeader(
        context.switchToHttp().getResponse(),
        'Retry-After',
        String(err.retryAfterSeconds),
      );
    }
    if (err instanceof HttpException) throw err;
    if (err) throw err;
    if (!user) throw invalidCredentials();
    return user;
  }
}
