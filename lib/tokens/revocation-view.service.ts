import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DataSource, MoreThan, MoreThanOrEqual } from 'typeorm';
import { Account } from '../accounts/account.entity.js';
import { InjectTwoFactorOptions, InjectTwoFactorRedis } from '../common/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';
import { IssuedToken } from './issued-token.entity.js';
import { withTimeout } from '../common/with-timeout.util.js';

/** What one revocation changes: revoked `jti`s (with their `exp`) and account cut-offs. */
export interface RevocationEvent {
  /** `[jti, exp]` pairs (exp in seconds). */
  tokens: [string, number][];
  /** `[accountId, tokensValidAfter]` pairs (epoch ms). */
  accounts: [string, number][];
}

/** The Redis pub/sub channel revocations travel on (its messages are a wire format). */
export const REVOCATION_CHANNEL = 'nestjs-rest-2fa:revocations';
/** Each sync re-reads this much before its cursor, to absorb clock skew between instances. */
const SYNC_OVERLAP_MS = 5000;
/** Longest a revocation waits for Redis to take its message; the database poll is the fallback. */
const PUBLISH_TIMEOUT_MS = 500;
/** Longest the start-up waits for the subscription; after that it completes in the background. */
const SUBSCRIBE_WAIT_MS = 2000;
/** Longest pause between two attempts to reach Redis again. */
const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * The guard's in-memory view of revocations, so that checking a token costs no query.
 * It holds the revoked `jti`s until they expire and, per account, the time before which
 * every token is revoked. It is kept fresh by polling the database every
 * `revocation.syncInterval` ms and, with Redis, by pub/sub messages that arrive at once.
 * If no sync has succeeded for `revocation.maxStaleness` ms the view reports itself stale
 * and the guard refuses every token (fail closed).
 */
@Injectable()
export class RevocationView implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly instanceId = randomUUID();
  private readonly revoked = new Map<string, number>();
  private readonly validAfter = new Map<string, number>();
  private cursor = 0;
  private lastSync = 0;
  private timer: NodeJS.Timeout | undefined;
  private subscriber: Redis | undefined;
  private syncing: Promise<void> | undefined;
  private publishFailing = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    @InjectTwoFactorRedis() private readonly redis: Redis | null,
  ) {}

  async onModuleInit(): Promise<void> {
    this.cursor = Date.now() - SYNC_OVERLAP_MS;
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
    const after = this.validAfter.get(sub);
    return after !== undefined && iat < Math.floor(after / 1000);
  }

  /** Number of revoked, unexpired `jti`s held (for benchmarks and health). */
  get size(): number {
    return this.revoked.size;
  }

  /**
   * Records a revocation made by this instance and tells the other instances. Never fails and
   * never waits long for Redis: without it, the others learn of the revocation by their poll.
   */
  async publish(event: RevocationEvent): Promise<void> {
    this.apply(event);
    if (!this.redis) return;
    const message = JSON.stringify({ from: this.instanceId, ...event });
    try {
      await withTimeout(this.redis.publish(REVOCATION_CHANNEL, message), PUBLISH_TIMEOUT_MS);
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

  /** Pulls revocations newer than the cursor from the database. */
  sync(): Promise<void> {
    this.syncing ??= this.pull().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async pull(): Promise<void> {
    const startedAt = Date.now();
    const since = this.cursor - SYNC_OVERLAP_MS;
    const nowSeconds = Math.floor(startedAt / 1000);
    const [tokens, accounts] = await Promise.all([
      this.dataSource.getRepository(IssuedToken).find({
        select: { jti: true, exp: true },
        where: { revokedAt: MoreThanOrEqual(since), exp: MoreThan(nowSeconds) },
      }),
      this.dataSource.getRepository(Account).find({
        select: { id: true, tokensValidAfter: true },
        where: { tokensValidAfter: MoreThanOrEqual(since) },
      }),
    ]);
    this.apply({
      tokens: tokens.map((t) => [t.jti, t.exp]),
      accounts: accounts.map((a) => [a.id, a.tokensValidAfter]),
    });
    this.cursor = startedAt;
    this.lastSync = startedAt;
    this.forgetExpired(nowSeconds);
  }

  private apply(event: RevocationEvent): void {
    for (const [jti, exp] of event.tokens) this.revoked.set(jti, exp);
    for (const [id, after] of event.accounts) {
      if (after > (this.validAfter.get(id) ?? 0)) this.validAfter.set(id, after);
    }
  }

  private forgetExpired(nowSeconds: number): void {
    for (const [jti, exp] of this.revoked) if (exp < nowSeconds - 60) this.revoked.delete(jti);
    // A cut-off older than the longest token lifetime can no longer refuse anything.
    const horizon = (nowSeconds - this.options.refreshTokenTtl - 60) * 1000;
    for (const [id, after] of this.validAfter) if (after < horizon) this.validAfter.delete(id);
  }

  /**
   * Listens on a connection of its own (a subscribed connection can do nothing else). Unlike
   * the shared client, which fails commands at once while Redis is away, this one queues its
   * SUBSCRIBE until Redis answers, reconnects forever and subscribes again after every
   * reconnection, then catches up with the database for what it missed meanwhile.
   */
  private async subscribe(redis: Redis): Promise<void> {
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
    const subscribed = subscriber.subscribe(REVOCATION_CHANNEL);
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

function isPairList(value: unknown, first: 'string', second: 'number'): boolean {
  return (
    Array.isArray(value) &&
    value.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === first &&
        typeof pair[1] === second &&
        Number.isFinite(pair[1]),
    )
  );
}

function isRevocationMessage(value: unknown): value is RevocationEvent & { from: unknown } {
  const v = value as Partial<RevocationEvent> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    isPairList(v.tokens, 'string', 'number') &&
    isPairList(v.accounts, 'string', 'number')
  );
}
