import { SetMetadata } from '@nestjs/common';

/** Metadata key set by `@Public()`. */
export const IS_PUBLIC_KEY = 'nestjs-rest-2fa:is-public';

/**
 * Marks a route or controller as open when `JwtTwoFactorGuard` is the global `APP_GUARD`.
 * @example @Public() @Get('health') health() {}
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_KEY, true);
