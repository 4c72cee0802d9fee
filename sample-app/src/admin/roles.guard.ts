import { Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { AuthenticatedAccount } from 'nestjs-rest-2fa';

/** The claims the sample app adds to its access tokens (`claims` option). */
export interface SampleClaims {
  roles: string[];
}

const ROLES_KEY = 'sample:roles';

/** The roles a route needs (any one of them), checked by `RolesGuard`. */
export const Roles = (...roles: string[]) => SetMetadata(ROLES_KEY, roles);

/**
 * Allows a route when the token's `roles` claim holds one of the route's roles. It runs after
 * `JwtTwoFactorGuard` (the global guard) and reads the claims from the principal: no lookup.
 * Without the role the answer is 403; without a token the global guard has already said 401.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const needed = this.reflector.getAllAndOverride<string[] | undefined>(ROLES_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!needed || needed.length === 0) return true;
    const user = context
      .switchToHttp()
      .getRequest<{ user?: AuthenticatedAccount<Partial<SampleClaims>> }>().user;
    const roles = user?.claims.roles;
    return Array.isArray(roles) && needed.some((role) => roles.includes(role));
  }
}
