import type { ThrottlerStorage } from '@nestjs/throttler';
import { withTimeout } from '../../core/common/with-timeout.util.js';
import type { TwoFactorRedisClient } from '../../core/options/two-factor-auth.options.js';
import { MemoryThrottlerStorage, type ThrottlerStorageRecord } from './memory-throttler.storage.js';

/**
 * Fixed-window counter: one INCR; the window is set on the first hit (and on a key that has
 * somehow lost its expiry, so that a client can never be counted forever).
 */
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
local pttl = redis.call('PTTL', KEYS[1])
if hits == 1 or pttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  pttl = tonumber(ARGV[1])
end
return {hits, pttl}
`;

/** Longest a token request waits for Redis before it is counted in memory instead. */
const REDIS_TIMEOUT_MS = 250;

/**
 * `@nestjs/throttler` storage in Redis, so every instance counts against one limit per client.
 * If Redis cannot answer (down, reconnecting, or slower than a quarter of a second), counting
 * falls back to this instance's memory rather than failing the request, holding it, or letting
 * it through unthrottled; it returns to Redis as soon as Redis answers again.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly fallback = new MemoryThrottlerStorage();

  constructor(
    private readonly redis: TwoFactorRedisClient,
    private readonly prefix = 'nestjs-rest-2fa:throttle:',
  ) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    // A client created with `lazyConnect` waits for its first command; any other state than
    // ready means the command would fail or queue, so it is not even tried.
    const status = this.redis.status;
    if (status === 'ready' || status === 'wait') {
      try {
        const [hits, pttl] = await withTimeout(
          this.redis.eval(INCREMENT, 1, this.prefix + key, String(ttl)) as Promise<
            [number, number]
          >,
          REDIS_TIMEOUT_MS,
        );
        const seconds = Math.max(1, Math.ceil(pttl / 1000));
        return {
          totalHits: hits,
          timeToExpire: seconds,
          isBlocked: hits > limit,
          timeToBlockExpire: seconds,
        };
      } catch {
        // Counted in memory below.
      }
    }
    return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
  }

  onApplicationShutdown(): void {
    this.fallback.onApplicationShutdown();
  }
}
