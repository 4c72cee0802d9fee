import { Controller, Get, Module, UseGuards, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { TypeOrmModule, type TypeOrmModuleOptions } from '@nestjs/typeorm';
import request from 'supertest';
import type { Logger as TypeOrmLogger } from 'typeorm';
import {
  AccountService,
  CurrentAccount,
  JwtTwoFactorGuard,
  TwoFactorAuthModule,
  type AuthenticatedAccount,
} from '../../lib/index.js';
import { loadAppConfig } from '../../sample-app/src/config/app.config.js';
import { databaseOptions } from '../../sample-app/src/config/database.config.js';
import { generateJwk } from '../support/keys.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';

/** A TypeORM logger that records every statement the DataSource sends to the database. */
class QueryRecorder implements TypeOrmLogger {
  readonly statements: string[] = [];
  logQuery(query: string): void {
    this.statements.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
  /** Forgets what was recorded so far. */
  reset(): void {
    this.statements.length = 0;
  }
}

@Controller('me')
@UseGuards(JwtTwoFactorGuard)
class GuardedController {
  @Get()
  me(@CurrentAccount() account: AuthenticatedAccount) {
    return { id: account.id, username: account.username };
  }
}

/**
 * An application like the sample app, with two differences: its DataSource reports every query
 * to `recorder`, and the background revocation poll runs once a minute instead of twice a
 * second, so that no query runs in the background while the requests below are in flight.
 */
function hotPathModule(databaseUrl: string, recorder: QueryRecorder) {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        ...databaseOptions(loadAppConfig({ DATABASE_URL: databaseUrl })),
        logger: recorder,
      } as TypeOrmModuleOptions),
      TwoFactorAuthModule.forRoot({
        issuer: 'https://issuer.test',
        keys: [generateJwk('ES256', 'hot-path')],
        throttle: false,
        revocation: { syncInterval: 60_000, maxStaleness: 120_000 },
        prune: { intervalSeconds: 0 },
      }),
    ],
    controllers: [GuardedController],
  })
  class HotPathModule {}
  return HotPathModule;
}

describe.each(databases())('guarded path in the steady state on %s', (kind) => {
  const recorder = new QueryRecorder();
  let database: TestDatabase;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    app = await NestFactory.create(hotPathModule(database.url, recorder), new ExpressAdapter(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  async function logIn(): Promise<{ access_token: string; id: string }> {
    const username = `hot-${Math.random().toString(36).slice(2, 10)}`;
    const password = 'correct horse battery staple';
    const { account, secretKey } = await app.get(AccountService).create(username, password);
    const res = await request(url)
      .post('/auth/token')
      .send({ username, password, secretKey })
      .expect(200);
    return { access_token: res.body.access_token, id: account.id };
  }

  /** Sends `total` GET /me with `token`, `parallel` at a time; returns the statuses. */
  async function flood(token: string, total: number, parallel = 20): Promise<number[]> {
    const statuses: number[] = [];
    for (let sent = 0; sent < total; sent += parallel) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(parallel, total - sent) }, () =>
          request(url).get('/me').set('Authorization', `Bearer ${token}`),
        ),
      );
      statuses.push(...batch.map((r) => r.status));
    }
    return statuses;
  }

  it('runs no query for 200 requests with a token already seen', async () => {
    const { access_token, id } = await logIn();

    // Warm-up: the first sight of the token reads its record (and the recorder sees it).
    recorder.reset();
    const first = await request(url)
      .get('/me')
      .set('Authorization', `Bearer ${access_token}`)
      .expect(200);
    expect(first.body.id).toBe(id);
    expect(recorder.statements.length).toBeGreaterThan(0);
    expect(recorder.statements.join('\n')).toMatch(/tfa_issued_tokens/);

    // Steady state.
    recorder.reset();
    const statuses = await flood(access_token, 200);
    expect(statuses).toEqual(Array(200).fill(200));
    expect(recorder.statements).toEqual([]);
  });

  it('still refuses a revoked token without a query', async () => {
    const { access_token } = await logIn();
    const other = await logIn();
    await flood(access_token, 5);
    await flood(other.access_token, 5);

    await request(url)
      .post('/auth/revoke')
      .set('Authorization', `Bearer ${access_token}`)
      .expect(204);

    recorder.reset();
    expect(await flood(access_token, 50)).toEqual(Array(50).fill(401));
    expect(await flood(other.access_token, 50)).toEqual(Array(50).fill(200));
    expect(recorder.statements).toEqual([]);
  });
});
