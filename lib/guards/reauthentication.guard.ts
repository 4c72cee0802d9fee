import {
  BadRequestException,
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { LoginService, type AccountFactors } from '../accounts/login.service.js';
import { invalidCredentials, RetryAfterException, setResponseHeader } from '../common/http.util.js';
import { validateBody } from '../common/validate-body.util.js';
import { FACTOR_FIELDS, ReauthenticationDto } from '../tokens/dto/token-request.dto.js';
import type { AuthenticatedAccount } from '../tokens/token.types.js';

/** The request parts the guard reads; Express and Fastify requests both fit. */
export interface ReauthenticationRequest {
  user?: AuthenticatedAccount;
  body?: unknown;
}

/**
 * Re-authentication (ASVS 5.0 7.5.1) for routes that change how an account logs in or that
 * cannot be undone: `@UseGuards(JwtTwoFactorGuard, ReauthenticationGuard)`. Besides the access
 * token, the JSON body must carry the account's password and its current second factor, with
 * the login's names (`{"password","secretKey"}`, or `{"password","otp"}` /
 * `{"password","recoveryCode"}` for a TOTP account), and they must be those of the token's
 * account. A wrong or missing factor answers the login's one `401` and counts toward the
 * account's lockout exactly like a failed login; a locked account answers `429` with
 * `Retry-After`. A code used here is spent. Extend `ReauthenticationDto` for the route's body.
 */
@Injectable()
export class ReauthenticationGuard implements CanActivate {
  constructor(private readonly login: LoginService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<ReauthenticationRequest>();
    const accountId = request.user?.id;
    // Without JwtTwoFactorGuard before it there is no account to re-authenticate.
    if (typeof accountId !== 'string') throw invalidCredentials();
    const factors = this.getFactors(request);
    try {
      await this.login.reauthenticate(accountId, factors);
    } catch (error) {
      if (error instanceof RetryAfterException) {
        setResponseHeader(http.getResponse(), 'Retry-After', String(error.retryAfterSeconds));
      }
      throw error;
    }
    return true;
  }

  /**
   * Reads the factors from the request; override to take them from elsewhere (headers, say).
   * Only the factor fields are read: the route's own fields are the route DTO's business.
   * @throws 400 for a body that is not a JSON object or a factor of the wrong type or length.
   */
  protected getFactors(request: ReauthenticationRequest): AccountFactors {
    const body = request.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestException('The request body must be a JSON object');
    }
    const factors: Record<string, unknown> = {};
    for (const field of FACTOR_FIELDS) {
      if (Object.hasOwn(body, field)) factors[field] = (body as Record<string, unknown>)[field];
    }
    return validateBody(ReauthenticationDto, FACTOR_FIELDS, factors);
  }
}
