/**
 * JwtTwoFactorGuard on an application's routes, with its protected hooks overridden as a user
 * would: where the token is read (`getToken`) and what a refusal answers (`refuse`).
 */
import {
  Controller,
  ForbiddenException,
  Get,
  Injectable,
  UseGuards,
  type ExecutionContext,
} from '@nestjs/common';
import { createModuleFixture, type ModuleFixture } from '../../../test/support/module-fixture.js';
import { AccountService } from '../../flows/accounts/account.service.js';
import { TokenService } from '../../core/tokens/token.service.js';
import { CurrentAccount } from '../decorators/current-account.decorator.js';
import { Public } from '../decorators/public.decorator.js';
import type { AuthenticatedAccount } from '../../core/tokens/token.types.js';
import { JwtTwoFactorGuard, type GuardedRequest } from './jwt-two-factor.guard.js';

/** Reads the token from `X-Access-Token` instead of `Authorization`. */
@Injectable()
class HeaderTokenGuard extends JwtTwoFactorGuard {
  protected override getToken(request: GuardedRequest): string | null {
    const value = request.headers['x-access-token'];
    return typeof value === 'string' ? value : null;
  }
}

/** Answers a refused token 403 with a body of the application's. */
@Injectable()
class ForbiddingGuard extends JwtTwoFactorGuard {
  protected override refuse(_context: ExecutionContext, outcome: 'refused' | 'unavailable'): never {
    throw new ForbiddenException(`token ${outcome}`);
  }
}

@Controller('guarded')
class GuardedRoutes {
  @UseGuards(JwtTwoFactorGuard)
  @Get('default')
  byDefault(@CurrentAccount() account: AuthenticatedAccount) {
    return { id: account.id };
  }

  @UseGuards(HeaderTokenGuard)
  @Get('header')
  byHeader(@CurrentAccount() account: AuthenticatedAccount) {
    return { id: account.id };
  }

  @UseGuards(ForbiddingGuard)
  @Get('forbidding')
  forbidding() {
    return 'ok';
  }

  @Public()
  @UseGuards(JwtTwoFactorGuard)
  @Get('open')
  open() {
    return 'open';
  }
}

describe('JwtTwoFactorGuard (sqlite)', () => {
  let fixture: ModuleFixture;
  let token: string;
  let accountId: string;

  beforeAll(async () => {
    fixture = await createModuleFixture('sqlite', {}, { controllers: [GuardedRoutes] });
    const { account } = await fixture.get(AccountService).create('dave', 'long enough password');
    accountId = account.id;
    token = (await fixture.get(TokenService).issue(account)).access_token;
  });
  afterAll(() => fixture?.close());

  it('accepts a Bearer token and puts the principal on the request', async () => {
    await fixture
      .http()
      .get('/guarded/default')
      .set('Authorization', `Bearer ${token}`)
      .expect(200, { id: accountId });
    // Again: the known-token path gives the same principal.
    await fixture
      .http()
      .get('/guarded/default')
      .set('Authorization', `Bearer ${token}`)
      .expect(200, { id: accountId });
  });

  it('refuses a missing, malformed or forged token with 401 and the RFC 6750 challenge', async () => {
    for (const header of [undefined, 'Bearer', `Basic ${token}`, `Bearer ${token}x`]) {
      const request = fixture.http().get('/guarded/default');
      const res = await (header ? request.set('Authorization', header) : request);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
  });

  it('reads the token where getToken says, and only there', async () => {
    await fixture
      .http()
      .get('/guarded/header')
      .set('X-Access-Token', token)
      .expect(200, { id: accountId });
    await fixture.http().get('/guarded/header').set('Authorization', `Bearer ${token}`).expect(401);
  });

  it('answers a refusal as refuse() says', async () => {
    await fixture
      .http()
      .get('/guarded/forbidding')
      .set('Authorization', 'Bearer nonsense')
      .expect(403)
      .expect((res) => expect(res.body.message).toBe('token refused'));
    await fixture
      .http()
      .get('/guarded/forbidding')
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
  });

  it('opens @Public() routes without a token', async () => {
    await fixture.http().get('/guarded/open').expect(200, 'open');
  });

  it('refuses a token revoked after it was first seen', async () => {
    const { account } = await fixture.get(AccountService).create('erin', 'long enough password');
    const own = (await fixture.get(TokenService).issue(account)).access_token;
    await fixture.http().get('/guarded/default').set('Authorization', `Bearer ${own}`).expect(200);
    await fixture.get(TokenService).revokeAllForAccount(account.id);
    await fixture.http().get('/guarded/default').set('Authorization', `Bearer ${own}`).expect(401);
  });
});
