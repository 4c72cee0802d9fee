import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { AppConfig } from '../config/app.config.js';

/** The sample app's Redis connection (shared with the module), or `null` without `REDIS_URL`. */
export const SAMPLE_REDIS = Symbol('SAMPLE_REDIS');

/** Longest the start-up waits for Redis; after that the app starts and Redis joins when it can. */
const CONNECT_WAIT_MS = 2000;

/**
 * Commands fail at once while Redis is away (no offline queue, one retry), so that a request
 * never waits on it: throttling counts in memory meanwhile and revocations travel by the
 * database poll. The connection itself is retried forever (ioredis's default strategy).
 */
async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', () => undefined);
  // Without this wait the first requests after start-up would find no connection yet.
  const ready = once(redis, 'ready');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CONNECT_WAIT_MS);
  });
  if ((await Promise.race([ready, timeout])) === 'timeout') {
    new Logger('Redis').warn(
      `Redis at REDIS_URL does not answer yet; starting without it and reconnecting in the background`,
    );
  }
  clearTimeout(timer);
  return redis;
}

export const redisProvider: Provider = {
  provide: SAMPLE_REDIS,
  useFactory: (config: AppConfig) => (config.redisUrl ? connect(config.redisUrl) : null),
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
