/** The validated options, every default filled in. Internal: inject the raw options publicly. */
export const RESOLVED_OPTIONS = Symbol('nestjs-rest-2fa:resolved-options');

/**
 * The token routes' throttler options and storage. Tokens of the module's own, so that they never
 * shadow those of an application's own `ThrottlerModule`.
 */
export const THROTTLER_OPTIONS = Symbol('nestjs-rest-2fa:throttler-options');
export const THROTTLER_STORAGE = Symbol('nestjs-rest-2fa:throttler-storage');

/** The shared ioredis connection, or `null` without Redis. */
export const REDIS_CLIENT = Symbol('nestjs-rest-2fa:redis');

/** Resolves once the routes' and DTOs' OpenAPI metadata is applied (when `@nestjs/swagger` is installed). */
export const SWAGGER_METADATA = Symbol('nestjs-rest-2fa:swagger-metadata');
