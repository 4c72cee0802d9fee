import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { TokenService } from './token.service.js';

/** Runs `TokenService.pruneExpired()` every `prune.intervalSeconds` (never when 0). */
@Injectable()
export class PruneSchedule implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TwoFactorAuth');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly tokens: TokenService,
  ) {}

  onModuleInit(): void {
    const every = this.options.prune.intervalSeconds;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      this.tokens
        .pruneExpired()
        .catch((e: Error) => this.logger.warn(`Pruning failed: ${e.message}`));
    }, every * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
