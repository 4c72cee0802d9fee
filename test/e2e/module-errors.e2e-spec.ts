/**
 * The module's core throws typed errors and the edge maps them to HTTP in one place. On an
 * application's own routes (no filter of its own), an error of a service of the module that
 * escapes answers its 4xx/503 with the module's body, never a 500; every other exception is
 * left to the application.
 */
import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import {
  AccountService,
  ConflictError,
  InvalidCredentialsError,
  TwoFactorAuthError,
} from '../../lib/index.js';
import { LoginService } from '../../lib/flows/login/login.service.js';
import { createModuleFixture, type ModuleFixture } from '../support/module-fixture.js';

@Controller('app')
class AppRoutes {
  constructor(
    private readonly accounts: AccountService,
    private readonly login: LoginService,
  ) {}

  @Post('accounts')
  async create(@Body() body: { username: string; password: string }) {
    const { account } = await this.accounts.create(body.username, body.password);
    return { id: account.id };
  }

  @Delete('accounts/:id')
  async remove(@Param('id') id: string) {
    await this.accounts.delete(id);
  }

  @Post('login')
  async logIn(@Body() body: { username: string; password: string; secretKey: string }) {
    return { id: (await this.login.authenticate(body)).id };
  }

  /** An app that catches the typed errors itself. */
  @Post('signup-or-explain')
  async explain(@Body() body: { username: string; password: string }) {
    try {
      await this.accounts.create(body.username, body.password);
      return { created: true };
    } catch (error) {
      if (error instanceof ConflictError) return { created: false, why: error.kind };
      throw error;
    }
  }

  @Get('crash')
  crash(): never {
    throw new Error('an error of the application');
  }
}

describe('typed errors of the core on an application route (sqlite)', () => {
  let fixture: ModuleFixture;

  beforeAll(async () => {
    fixture = await createModuleFixture(
      'sqlite',
      { lockout: { maxAttempts: 2, seconds: 60 } },
      { controllers: [AppRoutes] },
    );
  });
  afterAll(() => fixture?.close());

  it('answers 400, 409 and 404 with the module body, not 500', async () => {
    await fixture
      .http()
      .post('/app/accounts')
      .send({ username: 'alice', password: 'short' })
      .expect(400)
      .expect((res) => expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' }));
    await fixture
      .http()
      .post('/app/accounts')
      .send({ username: 'alice', password: 'long enough password' })
      .expect(201);
    await fixture
      .http()
      .post('/app/accounts')
      .send({ username: 'ALICE', password: 'long enough password' })
      .expect(409, { statusCode: 409, message: 'That username is taken', error: 'Conflict' });
    await fixture
      .http()
      .delete('/app/accounts/00000000-0000-4000-8000-000000000000')
      .expect(404, { statusCode: 404, message: 'No such account', error: 'Not Found' });
  });

  it('answers a failed login 401 and a lock 429 with Retry-After', async () => {
    const wrong = { username: 'bob', password: 'wrong password', secretKey: 'A'.repeat(43) };
    for (let i = 0; i < 2; i++) {
      await fixture
        .http()
        .post('/app/login')
        .send(wrong)
        .expect(401, { statusCode: 401, message: 'Invalid credentials', error: 'Unauthorized' });
    }
    const locked = await fixture.http().post('/app/login').send(wrong).expect(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lets the application catch the errors by class', async () => {
    await fixture
      .http()
      .post('/app/signup-or-explain')
      .send({ username: 'ALICE', password: 'long enough password' })
      .expect(201, { created: false, why: 'conflict' });
    expect(new InvalidCredentialsError()).toBeInstanceOf(TwoFactorAuthError);
  });

  it("leaves the application's own errors to the application (500 by Nest's default)", async () => {
    await fixture.http().get('/app/crash').expect(500);
  });
});
