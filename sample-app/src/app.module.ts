import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService, registerAs } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Redis } from 'ioredis';
import {
  JwtTwoFactorGuard,
  TwoFactorAuthModule,
  type Account,
  type TwoFactorAuthModuleOptions,
} from 'nestjs-rest-2fa';
import { AdminController } from './admin/admin.controller.js';
import type { SampleClaims } from './admin/roles.guard.js';
import { AccountsController } from './accounts/accounts.controller.js';
import { APP_CONFIG } from './config/app-config.token.js';
import type { AppConfig } from './config/app.config.js';
import { databaseOptions } from './config/database.config.js';
import { loadSecretKeyPepper, loadSigningKeys, loadTotpKeys } from './config/keys.loader.js';
import { AuditLogListener } from './audit/audit-log.listener.js';
import { TotpController } from './me/totp.controller.js';
import { HealthController } from './health/health.controller.js';
import { RedisCloser, redisProvider, SAMPLE_REDIS } from './health/redis.provider.js';
import { MeController } from './me/me.controller.js';

/** Shares the validated configuration and the Redis connection with the async factories below. */
@Module({})
class SampleCoreModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: SampleCoreModule,
      global: true,
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [registerAs('app', () => config)] }),
      ],
      providers: [
        {
          provide: APP_CONFIG,
          useFactory: (c: ConfigService) => c.getOrThrow<AppConfig>('app'),
          inject: [ConfigService],
        },
        redisProvider,
        RedisCloser,
      ],
      exports: [APP_CONFIG, SAMPLE_REDIS],
    };
  }
}

/** The sample API: accounts, `/me`, health, and the module's `/auth` routes. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        SampleCoreModule.register(config),
        TypeOrmModule.forRootAsync({ inject: [APP_CONFIG], useFactory: databaseOptions }),
        TwoFactorAuthModule.forRootAsync({
          inject: [APP_CONFIG, SAMPLE_REDIS],
          useFactory: (c: AppConfig, redis: Redis | null) =>
            twoFactorOptions(c, redis ?? undefined),
        }),
        TerminusModule,
        EventEmitterModule.forRoot({ wildcard: true, delimiter: '.' }),
      ],
      controllers: [
        AccountsController,
        MeController,
        TotpController,
        HealthController,
        AdminController,
      ],
      // Every route needs a token unless it is marked @Public().
      providers: [{ provide: APP_GUARD, useClass: JwtTwoFactorGuard }, AuditLogListener],
    };
  }
}

/** The module options the sample app derives from its configuration. */
export function twoFactorOptions(c: AppConfig, redis?: Redis): TwoFactorAuthModuleOptions {
  const encryptionKeys = loadTotpKeys(c);
  return {
    issuer: c.issuer,
    audience: c.audience,
    keys: loadSigningKeys(c),
    accessTokenTtl: c.accessTokenTtl,
    refreshTokenTtl: c.refreshTokenTtl,
    clockTolerance: c.clockTolerance,
    revocation: c.revocation,
    ...(c.passwordConcurrency !== undefined
      ? { password: { concurrency: c.passwordConcurrency } }
      : {}),
    lockout: c.lockout,
    throttle: c.throttle,
    secretKeyPepper: loadSecretKeyPepper(c),
    redis,
    totp: encryptionKeys ? { encryptionKeys, enrolmentTtl: c.totpEnrolmentTtl } : false,
    introspection: c.introspectionClients.length > 0 ? { clients: c.introspectionClients } : false,
    dpop: c.dpop,
    // Roles travel in the access token: the roles guard reads them without a lookup, and a
    // change shows at the next refresh. By account id, never by name: a name can be registered
    // by whoever comes first, or again after its account is deleted; an id never comes back.
    claims: (account: Account): SampleClaims => ({
      roles: c.adminAccountIds.includes(account.id) ? ['user', 'admin'] : ['user'],
    }),
  };
}
