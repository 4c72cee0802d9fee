import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectTwoFactorOptions, InjectTwoFactorRedis } from '../options/inject.decorators.js';
import type {
  ResolvedTwoFactorAuthOptions,
  TwoFactorRedisClient,
} from '../options/two-factor-auth.options.js';
import { withTimeout } from '../common/with-timeout.util.js';
import { RevocationLog, type RevocationEvent } from './revocation-log.service.js';

export type { RevocationEvent } from './revocation-log.service.js';

/**
 * The Redis pub/sub channel revocations of `issuer`'s tokens travel on (its messages are a wire
 * format). One per issuer, as the throttling counters and DPoP replay records are: applications
 * that share a Redis server never apply each other's revocations (an account cut-off names an
 * account id, which two applications may both have).
 */
export function revocationChannel(issuer: string): string {
  return `nestjs-rest-2fa:revocations:${issuer}`;
}
/**
 * Each poll re-reads this much (database clock) before its cursor: a revocation whose write
 * commits up to this long after its stamp (a slow transaction) is still seen.
 */
const SYNC_OVERLAP_MS = 15_000;
/** Longest a revocation waits for Redis to take its message; the database poll is the fallback. */
const PUBLISH_TIMEOUT_MS = 500;
/** Longest the start-up waits for the subscription; after that it completes in the background. */
const SUBSCRIBE_WAIT_MS = 2000;
/** Longest pause between two attempts to reach Redis again. */
const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * The guard's in-memory view of revocations, so that checking a token costs no query.
 * It holds only what the guard needs: revoked access-token `jti`s until they expire and, per
 * account, the time before which every token is revoked (spent refresh tokens are checked in
 * the database by the refresh itself, so they never fill this memory). It is kept fresh by
 * polling the database's revocation log every `revocation.syncInterval` ms with a cursor on the
 * database clock and, with Redis, by pub/sub messages that arrive at once. A poll that hangs is
 * abandoned after a timeout, so the next one can run. If no poll has succeeded for
 * `revocation.maxStaleness` ms the view reports itself stale and the guard refuses every token
 * (fail closed) until one does.
 */
@Injectable()
export class RevocationView implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly instanceId = randomUUID();
  private readonly channel: string;
  private readonly revoked = new Map<string, number>();
  private readonly validAfter = new Map<string, [after: number, horizon: number]>();
  /** Database clock (ms) at the start of the last successful poll; 0 before the first. */
  private cursor = 0;
  /** Local time of the last successful poll (only ever compared with this process's clock). */
  private lastSync = 0;
  private timer: NodeJS.Timeout | undefined;
  private subscriber: TwoFactorRedisClient | undefined;
  private syncing: Promise<void> | undefined;
  private publishFailing = false;

  constructor(
    private readonly log: RevocationLog,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    @InjectTwoFactorRedis() private readonly redis: TwoFactorRedisClient | null,
  ) {
    this.channel = revocationChannel(options.issuer);
  }

  async onModuleInit(): Promise<void> {
    await this.sync().catch(() => undefined);
    this.timer = setInterval(
      () => void this.sync().catch(() => undefined),
      this.options.revocation.syncInterval,
    );
    this.timer.unref();
    if (this.redis) await this.subscribe(this.redis);
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.subscriber?.disconnect();
  }

  /** True when the last successful sync is recent enough to trust. */
  isFresh(now = Date.now()): boolean {
    return now - this.lastSync <= this.options.revocation.maxStaleness;
  }

  /** True when the token `jti` of account `sub`, issued at `iat` (s), is revoked. */
  isRevoked(jti: string, sub: string, iat: number): boolean {
    if (this.revoked.has(jti)) return true;
    const cut = this.validAfter.get(sub);
    return cut !== undefined && iat < Math.floor(cut[0] / 1000);
  }

  /** Number of revoked, unexpired access-token `jti`s held (for benchmarks and health). */
  get size(): number {
    return this.revoked.size;
  }

  /**
   * Applies a revocation this instance has just recorded in the database and tells the other
   * instances. Never fails and never waits long for Redis: without it, the others learn of the
   * revocation by their poll.
   */
  async publish(event: RevocationEvent): Promise<void> {
    this.apply(event);
    if (!this.redis) return;
    const message = JSON.stringify({ from: this.instanceId, ...event });
    try {
      await withTimeout(this.redis.publish(this.channel, message), PUBLISH_TIMEOUT_MS);
      if (this.publishFailing) {
        this.publishFailing = false;
        this.logger.log('Redis publish works again');
      }
    } catch (error) {
      // Logged once per outage, not once per revocation.
      if (!this.publishFailing) {
        this.publishFailing = true;
        this.logger.warn(
          `Redis publish failed; other instances learn of revocations by polling the database until it is back (${(error as Error).message})`,
        );
      }
    }
  }

  /**
   * Pulls the revocations recorded since the cursor. A poll that does not finish within the
   * timeout is abandoned (its late result, if any, is still applied) so that one hung query
   * cannot keep the view stale until a restart.
   */
  sync(): Promise<void> {
    const timeout = Math.max(2000, 4 * this.options.revocation.syncInterval);
    this.syncing ??= withTimeout(this.pull(), timeout).finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async pull(): Promise<void> {
    const startedAt = Date.now();
    const dbNow = await this.log.now();
    // The first poll reads as far back as a token lives: a cut-off made just before start-up
    // must still refuse tokens this instance will meet.
    const since =
      this.cursor === 0
        ? dbNow - (this.options.refreshTokenTtl + 60) * 1000
        : this.cursor - SYNC_OVERLAP_MS;
    const event = await this.log.since(since);
    this.apply(event);
    this.cursor = Math.max(this.cursor, dbNow);
    this.lastSync = Math.max(this.lastSync, startedAt);
    this.forgetExpired(Math.floor(startedAt / 1000));
  }

  private apply(event: RevocationEvent): void {
    for (const [jti, exp] of event.tokens) this.revoked.set(jti, exp);
    for (const [id, after, horizon] of event.accounts) {
      if (after > (this.validAfter.get(id)?.[0] ?? 0)) this.validAfter.set(id, [after, horizon]);
    }
  }

  private forgetExpired(nowSeconds: number): void {
    for (const [jti, exp] of this.revoked) if (exp < nowSeconds - 60) this.revoked.delete(jti);
    // A cut-off past its horizon (the longest token lifetime) can no longer refuse anything.
    for (const [id, [, horizon]] of this.validAfter) {
      if (horizon < nowSeconds - 60) this.validAfter.delete(id);
    }
  }

  /**
   * Listens on a connection of its own (a subscribed connection can do nothing else). Unlike
   * the shared client, which fails commands at once while Redis is away, this one queues its
   * SUBSCRIBE until Redis answers, reconnects forever and subscribes again after every
   * reconnection, then catches up with the database for what it missed meanwhile.
   */
  private async subscribe(redis: TwoFactorRedisClient): Promise<void> {
    const subscriber = redis.duplicate({
      lazyConnect: true,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => this.receive(message));
    let connectedBefore = false;
    subscriber.on('ready', () => {
      if (connectedBefore) {
        this.logger.log('Redis is back; revocations arrive by pub/sub again');
        void this.sync().catch(() => undefined);
      }
      connectedBefore = true;
    });
    // Sending SUBSCRIBE opens the connection; it stays queued until Redis answers.
    const subscribed = subscriber.subscribe(this.channel);
    subscribed.catch(() => undefined);
    try {
      await withTimeout(subscribed, SUBSCRIBE_WAIT_MS);
    } catch (error) {
      this.logger.warn(
        `Redis subscribe not done yet; relying on the database poll until Redis answers (${(error as Error).message})`,
      );
    }
  }

  private receive(message: string): void {
    let event: unknown;
    try {
      event = JSON.parse(message);
    } catch {
      return; // Not ours; the database poll is the source of truth anyway.
    }
    if (isRevocationMessage(event) && event.from !== this.instanceId) this.apply(event);
  }
}

/** An array of tuples `[string, number, …]` of `length` members each. */
function isTupleList(value: unknown, length: number): boolean {
  return (
    Array.isArray(value) &&
    value.every(
      (tuple) =>
        Array.isArray(tuple) &&
        tuple.length === length &&
        typeof tuple[0] === 'string' &&
        tuple.slice(1).every((n) => typeof n === 'number' && Number.isFinite(n)),
    )
  );
}

function isRevocationMessage(value: unknown): value is RevocationEvent & { from: unknown } {
  const v = value as Partial<RevocationEvent> | null;
  return (
    typeof v === 'object' && v !== null && isTupleList(v.tokens, 2) && isTupleList(v.accounts, 3)
  );
}
