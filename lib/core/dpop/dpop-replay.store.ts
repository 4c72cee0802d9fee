import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { InjectTwoFactorOptions, InjectTwoFactorRedis } from '../options/inject.decorators.js';
import type {
  ResolvedTwoFactorAuthOptions,
  TwoFactorRedisClient,
} from '../options/two-factor-auth.options.js';
import { withTimeout } from '../common/with-timeout.util.js';
import { UnavailableError } from '../errors.js';

/** Longest a proof waits for Redis to record its `jti`; after that the request answers 503. */
const REDIS_TIMEOUT_MS = 1000;
/** Sets the key unless it exists: `OK` for the first proof, `nil` for a replay. */
const CLAIM = "return redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])";
/** How often expired entries leave the in-memory store. */
const SWEEP_MS = 10_000;

/**
 * Remembers the `jti` of every accepted DPoP proof until the proof could no longer be accepted
 * anyway (its `iat` is too old), so that each proof works once (RFC 9449 §11.1). With Redis the
 * record is shared by every instance (`SET NX`), and when Redis cannot answer the request is
 * refused with 503 rather than risk a replay on another instance. Without Redis each instance
 * remembers in its memory: a replay is refused by the instance that saw the proof.
 *
 * Entries are keyed by the proof's key thumbprint and `jti` together, so one client cannot use
 * up another's `jti`s.
 */
@Injectable()
export class DpopReplayStore implements OnApplicationShutdown {
  private readonly seen = new Map<string, number>();
  private readonly prefix: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions,
    @InjectTwoFactorRedis() private readonly redis: TwoFactorRedisClient | null,
  ) {
    // Per issuer, as the throttling counters: other APIs on the same Redis never collide.
    this.prefix = `nestjs-rest-2fa:dpop:${options.issuer}:`;
  }

  /**
   * Records the proof `jti` of key `jkt` until `expiresAt` (ms since the epoch). True the first
   * time; false for a replay.
   * @throws UnavailableError when Redis is configured and cannot answer.
   */
  async claim(jkt: string, jti: string, expiresAt: number): Promise<boolean> {
    if (!this.redis) return this.claimInMemory(`${jkt}.${jti}`, expiresAt);
    const id = createHash('sha256').update(`${jkt}.${jti}`).digest('base64url');
    const ttl = Math.max(1, expiresAt - Date.now());
    try {
      const answer = await withTimeout(
        this.redis.eval(CLAIM, 1, this.prefix + id, String(ttl)),
        REDIS_TIMEOUT_MS,
      );
      return answer === 'OK';
    } catch {
      throw new UnavailableError();
    }
  }

  private claimInMemory(id: string, expiresAt: number): boolean {
    const known = this.seen.get(id);
    if (known !== undefined && known > Date.now()) return false;
    this.seen.set(id, expiresAt);
    this.timer ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    return true;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, expiresAt] of this.seen) if (expiresAt <= now) this.seen.delete(id);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
