import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { AppConfig } from '../config/app.config.js';

/** The sample app's Redis connection (shared with the module), or `null` without `REDIS_URL`. */
export const SAMPLE_REDIS = Symbol('SAMPLE_REDIS');

export const redisProvider: Provider = {
  provide: SAMPLE_REDIS,
  useFactory: (config: AppConfig) =>
    config.redisUrl
      ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false }).on(
          'error',
          () => undefined,
        )
      : null,
  inject: [APP_CONFIG],
};

/** Closes the connection on shutdown (enableShutdownHooks). */
@Injectable()
export class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(SAMPLE_REDIS) private readonly redis: Redis | null) {}
  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }
}
