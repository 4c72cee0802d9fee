/**
 * What the module gives an application and what it keeps to itself: its internal providers
 * cannot be injected by the application, its throttler never shadows the application's own
 * ThrottlerModule, and its public guards work on the application's routes.
 */
import { Controller, Get, Inject, Injectable, Post, UseGuards } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Throttle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import {
  AccountService,
  JwtTwoFactorGuard,
  Public,
  TokenService,
  TokenThrottlerGuard,
} from '../../lib/index.js';
import { KeyRing } from '../../lib/core/keys/key-ring.js';
import { AccessTokenVerifier } from '../../lib/core/tokens/access-token.verifier.js';
import { RevocationView } from '../../lib/core/revocation/revocation-view.service.js';
import { RESOLVED_OPTIONS } from '../../lib/core/options/internal-tokens.js';
import { createModuleFixture, type ModuleFixture } from '../support/module-fixture.js';
import { isAvailable } from '../support/servers.js';

@Controller('app')
class AppRoutes {
  /** Guarded by the application's own ThrottlerGuard (limit 2), not the module's (limit 50). */
  @Public()
  @UseGuards(ThrottlerGuard)
  @Throttle({ default: { limit: 2, ttl: 60_000 } })
  @Get('own-throttle')
  own(): string {
    return 'ok';
  }

  /** The module's public throttler guard on an application route: the module's budget. */
  @Public()
  @UseGuards(TokenThrottlerGuard)
  @Post('login-like')
  loginLike(): string {
    return 'ok';
  }

  /** Guarded by JwtTwoFactorGuard, installed as APP_GUARD by the application. */
  @Get('me')
  me(): string {
    return 'me';
  }
}

describe('module boundaries (sqlite)', () => {
  let fixture: ModuleFixture;

  beforeAll(async () => {
    fixture = await createModuleFixture(
      'sqlite',
      { throttle: { limit: 5, ttl: 60 } },
      {
        imports: [ThrottlerModule.forRoot([{ name: 'default', limit: 100, ttl: 60_000 }])],
        controllers: [AppRoutes],
        providers: [{ provide: APP_GUARD, useClass: JwtTwoFactorGuard }],
      },
    );
  });
  afterAll(() => fixture?.close());

  it.each([
    ['KeyRing', KeyRing],
    ['AccessTokenVerifier', AccessTokenVerifier],
    ['RevocationView', RevocationView],
    ['the resolved options', RESOLVED_OPTIONS],
  ] as const)('keeps %s to itself: an application provider cannot inject it', async (_, token) => {
    @Injectable()
    class Nosy {
      constructor(@Inject(token) readonly internal: unknown) {}
    }
    await expect(createModuleFixture('sqlite', {}, { providers: [Nosy] })).rejects.toThrow(
      /can't resolve dependencies of the Nosy/i,
    );
  });

  it("leaves the application's own ThrottlerModule its own limits", async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await fixture.http().get('/app/own-throttle')).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("gives the module's public throttler guard the module's budget on an application route", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await fixture.http().post('/app/login-like')).status);
    expect(statuses).toEqual([201, 201, 201, 201, 201, 429]);
  });

  it('guards application routes with JwtTwoFactorGuard installed by the application', async () => {
    await fixture.http().get('/app/me').expect(401);
    const { account } = await fixture.get(AccountService).create('carol', 'long enough password');
    const pair = await fixture.get(TokenService).issue(account);
    const bearer = `Bearer ${pair.access_token}`;
    // First sight, then the known-token path (test/e2e/hot-path.e2e-spec.ts counts its queries).
    await fixture.http().get('/app/me').set('Authorization', bearer).expect(200, 'me');
    await fixture.http().get('/app/me').set('Authorization', bearer).expect(200, 'me');
    await fixture.get(TokenService).revokeAllForAccount(account.id);
    await fixture.http().get('/app/me').set('Authorization', bearer).expect(401);
  });
});

/** Only the module's throttler guard (this app has no ThrottlerModule of its own). */
@Controller('app')
class TokenRoutes {
  @Public()
  @UseGuards(TokenThrottlerGuard)
  @Post('login-like')
  loginLike(): string {
    return 'ok';
  }
}

// The global set-up reports a missing Redis (and fails under CI=true).
const withRedis = isAvailable('redis') ? ['redis'] : [];

describe.each(withRedis)('throttle budgets in a shared %s', () => {
  const apps: ModuleFixture[] = [];
  const app = async (issuer: string) => {
    const fixture = await createModuleFixture(
      'sqlite',
      { issuer, throttle: { limit: 3, ttl: 60 }, redis: process.env.TEST_REDIS_URL! },
      { controllers: [TokenRoutes] },
    );
    apps.push(fixture);
    return fixture;
  };
  const hits = async (fixture: ModuleFixture, n: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++)
      statuses.push((await fixture.http().post('/app/login-like')).status);
    return statuses;
  };
  afterAll(async () => {
    for (const fixture of apps) await fixture.close();
  });

  it('are shared by the instances of one API (one issuer), never with another API', async () => {
    const tag = Math.random().toString(36).slice(2);
    const a1 = await app(`https://a-${tag}.test`);
    const a2 = await app(`https://a-${tag}.test`);
    const b = await app(`https://b-${tag}.test`);
    expect(await hits(a1, 3)).toEqual([201, 201, 201]);
    expect(await hits(a2, 1)).toEqual([429]);
    expect(await hits(b, 3)).toEqual([201, 201, 201]);
  });
});
