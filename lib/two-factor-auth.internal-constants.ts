/** The validated options, every default filled in. Internal: inject the raw options publicly. */
export const RESOLVED_OPTIONS = Symbol('nestjs-rest-2fa:resolved-options');

/** The shared ioredis connection, or `null` without Redis. */
export const REDIS_CLIENT = Symbol('nestjs-rest-2fa:redis');
