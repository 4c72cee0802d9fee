import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { Public } from 'nestjs-rest-2fa';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

const DATABASE_CHECK_TIMEOUT_MS = 2000;
import { SAMPLE_REDIS } from './redis.provider.js';

/** Longest GET /health waits for Redis to answer PING before reporting it down. */
const REDIS_PING_TIMEOUT_MS = 1000;

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly indicators: HealthIndicatorService,
    @Inject(SAMPLE_REDIS) private readonly redis: Redis | null,
  ) {}

  @Get()
  @Public()
  @HealthCheck()
  @ApiOperation({ summary: 'Database (and Redis) state' })
  check() {
    const checks: HealthIndicatorFunction[] = [
      // A real table, not SELECT 1: a database file that cannot be read must show as down.
      () =>
        this.indicators
          .check('database')
          .attempt(async () => {
            await this.dataSource.query('SELECT 1 FROM tfa_accounts WHERE 1 = 0');
          })
          .withTimeout(DATABASE_CHECK_TIMEOUT_MS),
    ];
    const redis = this.redis;
    if (redis) {
      checks.push(() =>
        this.indicators
          .check('redis')
          .attempt(async () => {
            // A connection that is down fails at once (no offline queue); a hung one times out.
            if ((await redis.ping()) !== 'PONG') throw new Error('Redis does not answer PING');
          })
          .withTimeout(REDIS_PING_TIMEOUT_MS),
      );
    }
    return this.health.check(checks);
  }
}
