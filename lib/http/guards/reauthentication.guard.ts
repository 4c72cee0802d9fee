import {
  BadRequestException,
  Injectable,
  type CanActivate,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { validateSync } from 'class-validator';
import { LoginService, type AccountFactors } from '../../flows/login/login.service.js';
import { invalidCredentials, setErrorHeaders } from '../common/http.util.js';
import { asHttpError } from '../errors/error-mapping.js';
import { validateBody } from '../common/validate-body.util.js';
import { FACTOR_FIELDS, ReauthenticationDto } from '../dto/token-request.dto.js';
import type { AuthenticatedAccount } from '../../core/tokens/token.types.js';

/** Where Nest keeps a handler's parameter decorators (`@Body()` is kind 3); a stable name. */
const ROUTE_ARGS_METADATA = '__routeArguments__';
const BODY_PARAM = 3;

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
 * `Retry-After`. A code used here is spent.
 *
 * Extend `ReauthenticationDto` for the route's body: the guard then validates the whole body
 * against that class first (unknown fields and invalid values answer `400`), so a malformed
 * request neither counts as a guess nor spends a code.
 *
 * Requests with the same factors all pass the guard before any of them changes anything: hand
 * the principal to the service as `{ session }` (`AccountChangeOptions`), so that of changes
 * racing, one applies.
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
    const bodyType = this.getBodyType(context);
    if (bodyType) this.validateRouteBody(bodyType, request.body);
    const factors = this.getFactors(request);
    try {
      await this.login.reauthenticate(accountId, factors);
    } catch (raised) {
      const error = asHttpError(raised);
      setErrorHeaders(http.getResponse(), error);
      throw error;
    }
    return true;
  }

  /**
   * The class of the handler's `@Body()` parameter when it extends `ReauthenticationDto`
   * (the sign that it carries the factors), else `undefined`.
   */
  protected getBodyType(context: ExecutionContext): Type | undefined {
    const handler = context.getHandler();
    const args = Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) as
      Record<string, { index: number }> | undefined;
    const body = Object.entries(args ?? {}).find(([key]) => key.split(':')[0] === `${BODY_PARAM}`);
    if (!body) return undefined;
    const types = Reflect.getMetadata(
      'design:paramtypes',
      context.getClass().prototype as object,
      handler.name,
    ) as unknown[] | undefined;
    const type = types?.[body[1].index];
    return typeof type === 'function' &&
      (type === ReauthenticationDto || type.prototype instanceof ReauthenticationDto)
      ? (type as Type)
      : undefined;
  }

  /**
   * Validates the whole body against the route's DTO before any factor is checked.
   * @throws 400 for a body that is not an object, an unknown field or an invalid value.
   */
  protected validateRouteBody(type: Type, body: unknown): void {
    const value = body ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BadRequestException('The request body must be a JSON object');
    }
    // Own keys only, onto a fresh instance: `__proto__` tricks are refused, not merged. The
    // check is class-validator's on a flat body; nested DTOs are left to the route's pipe.
    const instance = new (type as new () => object)() as Record<string, unknown>;
    for (const key of Object.keys(value)) instance[key] = (value as Record<string, unknown>)[key];
    const errors = validateSync(instance, {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: false,
    });
    if (errors.length > 0) {
      throw new BadRequestException(errors.flatMap((e) => Object.values(e.constraints ?? {})));
    }
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
