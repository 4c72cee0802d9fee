import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-custom';
import type { AccountRecord } from '../../core/accounts/account.store.js';
import { LoginService } from '../../flows/login/login.service.js';
import { TWO_FACTOR_STRATEGY } from './strategy-names.js';
import { parseCredentials, type CredentialsRequest } from './credentials.parser.js';

/**
 * Passport strategy (on `passport-custom`) for the three factors: username, password and the
 * account's secret key, from the JSON body or from `Authorization: Basic` + `X-Secret-Key`.
 * On success `req.user` is the `AccountRecord`.
 */
@Injectable()
export class TwoFactorStrategy extends PassportStrategy(Strategy, TWO_FACTOR_STRATEGY) {
  constructor(private readonly login: LoginService) {
    super();
  }

  validate(req: CredentialsRequest): Promise<AccountRecord> {
    return this.login.authenticate(parseCredentials(req));
  }
}
