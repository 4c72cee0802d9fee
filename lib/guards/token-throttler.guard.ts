import { Injectable, type ExecutionContext } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';

/**
 * Per-client throttling of the token routes (`throttle.limit` per `throttle.ttl` seconds),
 * answering `429` with `Retry-After`. The client is `req.ip`: behind a proxy, set Express's
 * `trust proxy` (or Fastify's `trustProxy`) so that it is the real client's address.
 */
@Injectable()
export class TokenThrottlerGuard extends ThrottlerGuard {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.throttlers.length === 0) return true;
    return super.canActivate(context);
  }

  /** One budget per client across all token routes, not one per route. */
  protected override generateKey(_context: ExecutionContext, tracker: string, name: string): string {
    return `token-routes:${name}:${tracker}`;
  }
}
