import {
  Body,
  Controller,
  Header,
  HttpCode,
  HttpStatus,
  Post,
  UseFilters,
  UseGuards,
  type Type,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBasicAuth,
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '../common/swagger.decorators.js';
import type { AccountRecord } from '../../core/accounts/account.store.js';
import { isEmptyBody } from '../common/http-basic.util.js';
import { validateBody } from '../common/validate-body.util.js';
import { TwoFactorExceptionFilter } from '../errors/two-factor-exception.filter.js';
import { CurrentAccount } from '../decorators/current-account.decorator.js';
import { Public } from '../decorators/public.decorator.js';
import { JwtTwoFactorGuard } from '../guards/jwt-two-factor.guard.js';
import { TokenThrottlerGuard } from '../guards/token-throttler.guard.js';
import { TwoFactorCredentialsGuard } from '../guards/two-factor-credentials.guard.js';
import { DpopJkt, DpopProofGuard } from '../guards/dpop-proof.guard.js';
import {
  ErrorResponseDto,
  RefreshRequestDto,
  RevokeRequestDto,
  TokenPairDto,
  TokenRequestDto,
} from '../dto/token-request.dto.js';
import { TokenService } from '../../core/tokens/token.service.js';
import type { AuthenticatedAccount, TokenPair } from '../../core/tokens/token.types.js';

const DPOP_HEADER = {
  name: 'DPoP',
  required: false,
  description:
    'A DPoP proof (RFC 9449) of this request: the tokens are then bound to its key (`token_type` `DPoP`). A bad proof answers 400 `invalid_dpop_proof`.',
};

const ERRORS = [
  ApiBadRequestResponse({
    description:
      'Malformed body, or an invalid DPoP proof (`invalid_dpop_proof`, `use_dpop_nonce`)',
    type: ErrorResponseDto,
  }),
  ApiTooManyRequestsResponse({
    description: 'Throttled or locked out; see Retry-After',
    type: ErrorResponseDto,
  }),
  ApiServiceUnavailableResponse({
    description: 'Database unavailable; see Retry-After',
    type: ErrorResponseDto,
  }),
];

function applyAll(...decorators: MethodDecorator[]): MethodDecorator {
  return (target, key, descriptor) => {
    for (const decorator of decorators) decorator(target, key, descriptor);
  };
}

/** The token routes; `createTokenController()` mounts them under the configured prefix. */
@ApiTags('auth')
@UseFilters(TwoFactorExceptionFilter)
@UseGuards(TokenThrottlerGuard)
export class TokenRoutes {
  constructor(private readonly tokens: TokenService) {}

  @Post('token')
  @Public()
  // The proof first: a bad one costs no password hash and is never followed by a token.
  @UseGuards(DpopProofGuard, TwoFactorCredentialsGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'Log in with username, password and secret key',
    description:
      'Either a JSON body, or `Authorization: Basic base64(username:password)` with the `X-Secret-Key` header.',
  })
  @ApiBody({ type: TokenRequestDto, required: false })
  @ApiBasicAuth()
  @ApiHeader({
    name: 'X-Secret-Key',
    required: false,
    description: 'The secret key, with Basic credentials',
  })
  @ApiHeader(DPOP_HEADER)
  @ApiOkResponse({ type: TokenPairDto, description: 'An access token and a refresh token' })
  @ApiUnauthorizedResponse({
    description: 'Any wrong or missing factor, unknown or disabled account',
    type: ErrorResponseDto,
  })
  @applyAll(...ERRORS)
  token(
    @CurrentAccount() account: AccountRecord,
    @DpopJkt() jkt: string | undefined,
  ): Promise<TokenPair> {
    return this.tokens.issue(account, { jkt });
  }

  @Post('refresh')
  @Public()
  @UseGuards(DpopProofGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'Exchange a refresh token for a new pair',
    description:
      'The refresh token is spent; presenting it again revokes every token of its login.',
  })
  @ApiBody({ type: RefreshRequestDto })
  @ApiHeader(DPOP_HEADER)
  @ApiOkResponse({ type: TokenPairDto })
  @ApiUnauthorizedResponse({ description: 'Not a live refresh token', type: ErrorResponseDto })
  @applyAll(...ERRORS)
  refresh(@Body() body: unknown, @DpopJkt() jkt: string | undefined): Promise<TokenPair> {
    const { refresh_token } = validateBody(RefreshRequestDto, ['refresh_token'], body);
    return this.tokens.refresh(refresh_token, { jkt });
  }

  @Post('revoke')
  // Not @Public(): with JwtTwoFactorGuard as the global guard, that would open this route.
  @UseGuards(JwtTwoFactorGuard)
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Log out',
    description:
      'Without a body: revokes the presented access token and every token of its login. With `{"token"}` (RFC 7009): revokes that token of yours instead.',
  })
  @ApiBody({ type: RevokeRequestDto, required: false })
  @ApiNoContentResponse({
    description: 'Revoked (also for a token that was already invalid, per RFC 7009)',
  })
  @ApiUnauthorizedResponse({ description: 'No valid access token', type: ErrorResponseDto })
  @applyAll(...ERRORS)
  async revoke(
    @CurrentAccount() account: AuthenticatedAccount,
    @Body() body: unknown,
  ): Promise<void> {
    if (isEmptyBody(body)) {
      await this.tokens.revokeFamily(account.familyId, 'logout');
      return;
    }
    const { token } = validateBody(RevokeRequestDto, ['token', 'token_type_hint'], body);
    if (token == null) await this.tokens.revokeFamily(account.familyId, 'logout');
    else await this.tokens.revokeToken(token, account.id);
  }
}

/** The token routes under `prefix`. */
export function createTokenController(prefix: string): Type<TokenRoutes> {
  return routeClass(TokenRoutes, prefix);
}

/** A controller class serving `routes` under `prefix` (Nest reads the path from the class). */
export function routeClass<T>(routes: Type<T>, prefix: string): Type<T> {
  const named = {
    [routes.name.replace(/Routes$/, 'Controller')]: class extends (routes as Type<object>) {},
  };
  const controller = Object.values(named)[0] as Type<T>;
  Controller(prefix)(controller);
  return controller;
}
