import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/app-config.token.js';
import { ConfigurationError, type AppConfig } from '../config/app.config.js';

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
  let redis: Redis;
  try {
    redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  } catch {
    // Not ioredis's error: it carries the URL, password included, and Nest would print it.
    throw new ConfigurationError(
      'REDIS_URL is not a valid redis:// or rediss:// URL (percent-encode @ : / # ? in the password)',
    );
  }
  // Connection errors are neither logged nor thrown: their text is the driver's, and the app
  // starts without Redis anyway (below).
  redis.on('error', () => undefined);
  // Without this wait the first requests after start-up would find no connection yet. Not
  // `once(redis, 'ready')`: it rejects on the first 'error', which stopped the start-up.
  const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
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
