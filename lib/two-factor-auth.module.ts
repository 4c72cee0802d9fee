import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccountService } from './flows/accounts/account.service.js';
import { LoginService } from './flows/login/login.service.js';
import { PasswordHasher } from './core/passwords/password-hasher.service.js';
import { importOptionalPeer } from './core/common/optional-peer.util.js';
import { SWAGGER_METADATA_APPLIED } from './http/common/swagger.decorators.js';
import { TwoFactorExceptionFilter } from './http/errors/two-factor-exception.filter.js';
import { MemoryThrottlerStorage } from './http/throttle/memory-throttler.storage.js';
import { TwoFactorAuthErrorFilter } from './http/errors/core-error.filter.js';
import { JwtTwoFactorGuard } from './http/guards/jwt-two-factor.guard.js';
import { TokenThrottlerGuard } from './http/guards/token-throttler.guard.js';
import { TwoFactorCredentialsGuard } from './http/guards/two-factor-credentials.guard.js';
import { JwksController } from './http/controllers/jwks.controller.js';
import { KeyRing } from './core/keys/key-ring.js';
import { LockoutService } from './core/lockout/lockout.service.js';
import { IdentifierHasher } from './core/identifiers/identifier-hasher.service.js';
import { RevocationLog } from './core/revocation/revocation-log.service.js';
import { ReauthenticationGuard } from './http/guards/reauthentication.guard.js';
import { SecretKeyService } from './flows/secret-keys/secret-key.service.js';
import { JwtTwoFactorStrategy } from './http/strategies/jwt-two-factor.strategy.js';
import { TwoFactorStrategy } from './http/strategies/two-factor.strategy.js';
import { RedisThrottlerStorage } from './http/throttle/redis-throttler.storage.js';
import { AccessTokenVerifier } from './core/tokens/access-token.verifier.js';
import { AuditEvents } from './core/events/audit-events.service.js';
import { TotpService } from './flows/totp/totp.service.js';
import { RevocationView } from './core/revocation/revocation-view.service.js';
import { createTokenController, routeClass } from './http/controllers/token.controller.js';
import { IntrospectionRoutes } from './http/controllers/introspection.controller.js';
import { IntrospectionService } from './core/tokens/introspection.service.js';
import { TokenService } from './core/tokens/token.service.js';
import { TokenIssuer } from './core/tokens/token-issuer.service.js';
import { TokenRecords } from './core/tokens/token-records.js';
import { TokenRevoker } from './core/tokens/token-revoker.service.js';
import { TokenPruner } from './core/tokens/token-pruner.service.js';
import { PruneSchedule } from './core/tokens/prune.schedule.js';
import { twoFactorAuthEntities } from './core/database/schema.js';
import { configureAccounts } from './core/accounts/account-entities.js';
import { AccountStore } from './core/accounts/account.store.js';
import { DpopProofVerifier } from './core/dpop/dpop-proof.verifier.js';
import { DpopReplayStore } from './core/dpop/dpop-replay.store.js';
import { DpopAccess } from './http/dpop/dpop-access.js';
import { DpopProofGuard } from './http/guards/dpop-proof.guard.js';
import {
  REDIS_CLIENT,
  RESOLVED_OPTIONS,
  SWAGGER_METADATA,
  THROTTLER_OPTIONS,
  THROTTLER_STORAGE,
} from './core/options/internal-tokens.js';
import {
  ConfigurableModuleClass,
  TWO_FACTOR_AUTH_MODULE_OPTIONS,
  type TwoFactorAuthForRootAsyncOptions,
  type TwoFactorAuthForRootOptions,
} from './two-factor-auth.module-definition.js';
import {
  resolveTwoFactorAuthOptions,
  TwoFactorAuthConfigError,
} from './core/options/two-factor-auth.options-validation.js';
import {
  TWO_FACTOR_AUTH_DEFAULTS,
  type ResolvedTwoFactorAuthOptions,
  type TwoFactorAuthModuleExtras,
  type TwoFactorRedisClient,
} from './core/options/two-factor-auth.options.js';

/** Closes a Redis connection the module opened itself (never one the application passed in). */
class OwnedRedis {
  constructor(readonly client: TwoFactorRedisClient | null) {}
  onApplicationShutdown(): void {
    this.client?.disconnect();
  }
}

/** Opens the connection of a `redis` URL with `ioredis`, an optional peer loaded only here. */
async function connectRedis(url: string): Promise<TwoFactorRedisClient> {
  const ioredis = await importOptionalPeer('ioredis', () => import('ioredis'));
  if (!ioredis) {
    throw new TwoFactorAuthConfigError(
      'redis',
      "is a URL, which needs the package 'ioredis': install it (`npm i ioredis`) or leave the option out.",
    );
  }
  return new ioredis.Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  }).on('error', () => undefined);
}

const INTERNAL: Provider[] = [
  // Awaited while the application is created, so that a Swagger document made right after
  // `NestFactory.create()` has every route and DTO of the module.
  { provide: SWAGGER_METADATA, useFactory: () => SWAGGER_METADATA_APPLIED },
  {
    provide: RESOLVED_OPTIONS,
    useFactory: (raw: unknown) => resolveTwoFactorAuthOptions(raw),
    inject: [TWO_FACTOR_AUTH_MODULE_OPTIONS],
  },
  {
    provide: KeyRing,
    useFactory: (options: ResolvedTwoFactorAuthOptions) => KeyRing.fromJwks(options.keys),
    inject: [RESOLVED_OPTIONS],
  },
  {
    provide: OwnedRedis,
    useFactory: async (options: ResolvedTwoFactorAuthOptions) =>
      new OwnedRedis(typeof options.redis === 'string' ? await connectRedis(options.redis) : null),
    inject: [RESOLVED_OPTIONS],
  },
  {
    provide: REDIS_CLIENT,
    useFactory: (options: ResolvedTwoFactorAuthOptions, owned: OwnedRedis) =>
      typeof options.redis === 'object' ? options.redis : owned.client,
    inject: [RESOLVED_OPTIONS, OwnedRedis],
  },
  {
    provide: THROTTLER_OPTIONS,
    useFactory: ({ throttle }: ResolvedTwoFactorAuthOptions) => ({
      throttlers: throttle
        ? [{ name: 'default', limit: throttle.limit, ttl: throttle.ttl * 1000 }]
        : [],
      errorMessage: 'Too many requests; try again later',
    }),
    inject: [RESOLVED_OPTIONS],
  },
  {
    provide: THROTTLER_STORAGE,
    // Counted per issuer: instances of one API share a budget, other APIs on the same Redis
    // never count against it.
    useFactory: (redis: TwoFactorRedisClient | null, options: ResolvedTwoFactorAuthOptions) =>
      redis
        ? new RedisThrottlerStorage(redis, `nestjs-rest-2fa:throttle:${options.issuer}:`)
        : new MemoryThrottlerStorage(),
    inject: [REDIS_CLIENT, RESOLVED_OPTIONS],
  },
  TwoFactorExceptionFilter,
  { provide: APP_FILTER, useClass: TwoFactorAuthErrorFilter },
  AccountStore,
  LockoutService,
  IdentifierHasher,
  RevocationLog,
  RevocationView,
  AccessTokenVerifier,
  TokenRecords,
  TokenIssuer,
  TokenRevoker,
  TokenPruner,
  PruneSchedule,
  AuditEvents,
  IntrospectionService,
  DpopReplayStore,
  DpopAccess,
];

const PUBLIC: Provider[] = [
  AccountService,
  PasswordHasher,
  SecretKeyService,
  TokenService,
  TotpService,
  TwoFactorStrategy,
  JwtTwoFactorStrategy,
  JwtTwoFactorGuard,
  TwoFactorCredentialsGuard,
  ReauthenticationGuard,
  LoginService,
  TokenThrottlerGuard,
  DpopProofVerifier,
  DpopProofGuard,
];

/**
 * Two-factor JWT authentication: `TwoFactorAuthModule.forRoot({...})` or
 * `TwoFactorAuthModule.forRootAsync({ imports, inject, useFactory | useClass | useExisting })`.
 * The application's TypeORM DataSource must include `TWO_FACTOR_AUTH_ENTITIES` (or use
 * `autoLoadEntities`) and run `TWO_FACTOR_AUTH_MIGRATIONS`.
 */
@Module({
  providers: [...INTERNAL, ...PUBLIC],
  exports: [
    ...PUBLIC,
    TWO_FACTOR_AUTH_MODULE_OPTIONS,
    // What the public guards need when an application applies them to its own routes.
    THROTTLER_OPTIONS,
    THROTTLER_STORAGE,
  ],
})
export class TwoFactorAuthModule extends ConfigurableModuleClass {
  static override forRoot(options: TwoFactorAuthForRootOptions): DynamicModule {
    return withRoutes(super.forRoot(options), options);
  }

  static override forRootAsync(options: TwoFactorAuthForRootAsyncOptions): DynamicModule {
    return withRoutes(super.forRootAsync(options), options);
  }
}

/**
 * What `forRoot` and `forRootAsync` add to the generated module: the entities of the chosen
 * account store (the module's `Account`, or the application's own with `accounts`) and the
 * routes.
 */
function withRoutes(module: DynamicModule, extras: TwoFactorAuthModuleExtras): DynamicModule {
  const accounts = configureAccounts(extras.accounts);
  const entities = twoFactorAuthEntities(accounts && extras.accounts);
  const routes = extras.routes === undefined ? TWO_FACTOR_AUTH_DEFAULTS.routes : extras.routes;
  const controllers: Type[] = [];
  if (routes !== false) {
    const prefix = routes.prefix ?? TWO_FACTOR_AUTH_DEFAULTS.routes.prefix;
    controllers.push(createTokenController(prefix), routeClass(IntrospectionRoutes, prefix));
    if (routes.jwks ?? TWO_FACTOR_AUTH_DEFAULTS.routes.jwks) controllers.push(JwksController);
  }
  return {
    ...module,
    imports: [...(module.imports ?? []), TypeOrmModule.forFeature([...entities])],
    controllers: [...(module.controllers ?? []), ...controllers],
  };
}
