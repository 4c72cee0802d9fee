import { Inject } from '@nestjs/common';
import { REDIS_CLIENT, RESOLVED_OPTIONS } from './internal-tokens.js';

/** Injects the validated module options. */
export const InjectTwoFactorOptions = () => Inject(RESOLVED_OPTIONS);

/** Injects the module's Redis connection (`null` when no Redis is configured). */
export const InjectTwoFactorRedis = () => Inject(REDIS_CLIENT);
