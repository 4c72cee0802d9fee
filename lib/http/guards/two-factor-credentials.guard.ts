import { Injectable, Optional, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { AccountRecord } from '../../core/accounts/account.store.js';
import { invalidCredentials, setErrorHeaders } from '../common/http.util.js';
import { asHttpError } from '../errors/error-mapping.js';
import { TwoFactorStrategy } from '../strategies/two-factor.strategy.js';
import { TWO_FACTOR_STRATEGY } from '../strategies/strategy-names.js';
import { authenticateWith } from './passport-authenticate.util.js';

/**
 * Runs the credentials strategy (username + password + second factor): for applications that
 * write their own token route. On success `req.user` is the `AccountRecord`; every failure is the
 * same `401`, a locked username `429` with `Retry-After`, malformed input `400`.
 */
@Injectable()
export class TwoFactorCredentialsGuard extends AuthGuard(TWO_FACTOR_STRATEGY) {
  constructor(@Optional() private readonly strategy?: TwoFactorStrategy) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<{ user?: unknown }>();
    request.user = await authenticateWith(
      this.strategy ?? TWO_FACTOR_STRATEGY,
      request,
      http.getResponse(),
      (err, user, info, status) =>
        this.handleRequest(err, user as AccountRecord | false, info, context, status),
    );
    return true;
  }

  override handleRequest<TUser = AccountRecord>(
    raised: unknown,
    user: TUser | false,
    _info: unknown,
    context: ExecutionContext,
    _status?: unknown,
  ): TUser {
    const err = asHttpError(raised);
    setErrorHeaders(context.switchToHttp().getResponse(), err);
    if (err) throw err;
    if (!user) throw invalidCredentials();
    return user;
  }
}
