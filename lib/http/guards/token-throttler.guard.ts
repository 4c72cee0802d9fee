import { HttpStatus, Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import { RetryAfterException } from '../common/http.util.js';
import { THROTTLER_OPTIONS, THROTTLER_STORAGE } from '../../core/options/internal-tokens.js';

/** What `@nestjs/throttler` reports when a client is over its limit. */
interface ThrottlerLimitDetail {
  timeToBlockExpire: number;
}

/**
 * Per-client throttling of the token routes (`throttle.limit` per `throttle.ttl` seconds),
 * answering `429` with `Retry-After`. The client is `req.ip`: behind a proxy, set Express's
 * `trust proxy` (or Fastify's `trustProxy`) so that it is the real client's address.
 */
@Injectable()
export class TokenThrottlerGuard extends ThrottlerGuard {
  constructor(
    @Inject(THROTTLER_OPTIONS) options: ThrottlerModuleOptions,
    @Inject(THROTTLER_STORAGE) storage: ThrottlerStorage,
    reflector: Reflector,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.throttlers.length === 0) return true;
    return super.canActivate(context);
  }

  /** One budget per client across all token routes, not one per route. */
  protected override generateKey(
    _context: ExecutionContext,
    tracker: string,
    name: string,
  ): string {
    return `token-routes:${name}:${tracker}`;
  }

  /** The module's error shape (and a Retry-After, which the base class also sets). */
  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    throw new RetryAfterException(
      HttpStatus.TOO_MANY_REQUESTS,
      'Too many requests; try again later',
      Math.max(1, detail.timeToBlockExpire),
    );
  }
}
