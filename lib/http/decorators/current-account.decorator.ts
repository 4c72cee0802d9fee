import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AuthenticatedAccount } from '../../core/tokens/token.types.js';

/**
 * The authenticated principal of a guarded route: `{ id, username, jti, iat, exp, familyId }`,
 * or one of its fields.
 * @example me(@CurrentAccount() account: AuthenticatedAccount) {}
 * @example me(@CurrentAccount('id') id: string) {}
 */
export const CurrentAccount = createParamDecorator(
  (field: keyof AuthenticatedAccount | undefined, context: ExecutionContext) => {
    const user = context.switchToHttp().getRequest<{ user?: AuthenticatedAccount }>().user;
    return field && user ? user[field] : user;
  },
);
