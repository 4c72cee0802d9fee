import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';

/** What `@nestjs/throttler` expects of a storage's `increment`. */
export interface ThrottlerStorageRecord {
  totalHits: number;
  timeToExpire: number;
  isBlocked: boolean;
  timeToBlockExpire: number;
}

interface Window {
  hits: number;
  /** Epoch ms when the window ends and the count starts again. */
  resetAt: number;
}

/** How often windows that ended are forgotten, at most. */
const SWEEP_MS = 60_000;

/**
 * Per-client counting in this instance's memory: a fixed window per key, one map lookup and an
 * increment per request, as `RedisThrottlerStorage` counts in Redis (the two agree). It replaces
 * `@nestjs/throttler`'s own storage, which keeps every hit's expiry and scans them all on each
 * request: its cost grows with the limit (a limit of 100,000 per window scanned 100,000 numbers
 * per request, and past about 125,000 hits its `Math.min(...hits)` threw a RangeError on every request).
 */
export class MemoryThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly windows = new Map<string, Window>();
  private sweeper: NodeJS.Timeout | undefined;

  increment(
    key: string,
    ttl: number,
    limit: number,
    // The module's throttle blocks for the rest of the window only (`blockDuration` = ttl).
    _blockDuration: number,
    _throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      window = { hits: 0, resetAt: now + ttl };
      this.windows.set(key, window);
      this.sweep(Math.min(ttl, SWEEP_MS));
    }
    window.hits++;
    const seconds = Math.max(1, Math.ceil((window.resetAt - now) / 1000));
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire: seconds,
      isBlocked: window.hits > limit,
      timeToBlockExpire: seconds,
    });
  }

  /** The clients being counted now (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Forgets ended windows every `everyMs`, so that memory follows the clients of one window. */
  private sweep(everyMs: number): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
    }, everyMs);
    this.sweeper.unref();
  }
}
