import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  HttpStatus,
  Post,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiBody,
  ApiConflictResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { IsString, Matches, MaxLength, MinLength } from 'class-validator';
import {
  AccountService,
  CurrentAccount,
  ErrorResponseDto,
  ReauthenticationDto,
  ReauthenticationGuard,
  SecretKeyService,
  TWO_FACTOR_AUTH_DEFAULTS,
  type AuthenticatedAccount,
} from 'nestjs-rest-2fa';
import { CHANGED_MEANWHILE } from './changed-meanwhile.js';

/** A re-authenticated route's 429: wrong factors, here or at login, locked the account. */
const ApiLockedOut = () =>
  ApiTooManyRequestsResponse({
    description: 'Locked out; see Retry-After',
    type: ErrorResponseDto,
  });

const { minLength, maxLength } = TWO_FACTOR_AUTH_DEFAULTS.password;

class MeDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'alice' })
  username!: string;
}

class NewSecretKeyDto {
  @ApiProperty({ description: 'The new secret key, shown once', example: 'Zq0m…' })
  secretKey!: string;
}

/**
 * `POST /me/password`: the current factors and the new password. The new password's rules are
 * checked here too (the sample app keeps the module's default lengths), so that a request the
 * service would refuse is refused before the factors are checked and a code spent.
 */
class ChangePasswordDto extends ReauthenticationDto {
  @ApiProperty({ example: 'a new long passphrase', minLength, maxLength })
  @IsString()
  @MinLength(minLength)
  @MaxLength(maxLength)
  @Matches(/^[^\0]*$/, { message: 'newPassword must not contain NUL characters' })
  newPassword!: string;
}

/** Routes of the logged-in account; the global `JwtTwoFactorGuard` protects them. */
@ApiTags('me')
@ApiBearerAuth()
@ApiUnauthorizedResponse({
  description:
    'Missing, invalid, expired or revoked access token; or (re-authentication) a wrong password or second factor',
  type: ErrorResponseDto,
})
@ApiServiceUnavailableResponse({
  description: 'Revocation state cannot be checked',
  type: ErrorResponseDto,
})
@Controller('me')
export class MeController {
  constructor(
    private readonly secretKeys: SecretKeyService,
    private readonly accounts: AccountService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'The account the access token belongs to' })
  @ApiOkResponse({ type: MeDto })
  me(@CurrentAccount() account: AuthenticatedAccount): MeDto {
    return { id: account.id, username: account.username };
  }

  @Post('secret-key')
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Rotate the secret key: the old key and every token of the account stop working',
    description: 'Re-authentication: the body carries the password and the current secret key.',
  })
  @ApiBody({ type: ReauthenticationDto })
  @ApiOkResponse({ type: NewSecretKeyDto })
  @ApiConflictResponse({
    description: `The account logs in with TOTP. ${CHANGED_MEANWHILE}`,
    type: ErrorResponseDto,
  })
  @ApiLockedOut()
  async rotate(
    @CurrentAccount() me: AuthenticatedAccount,
    // Validated (unknown fields refused); the guard has already checked the factors.
    @Body() _factors: ReauthenticationDto,
  ): Promise<NewSecretKeyDto> {
    // Through this login only while it is live: of rotations racing, one applies.
    return { secretKey: await this.secretKeys.rotate(me.id, { session: me }) };
  }

  @Post('password')
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Change the password: every token of the account is revoked',
    description:
      'Re-authentication: the body carries the current password and second factor, and `newPassword`.',
  })
  @ApiNoContentResponse({ description: 'Changed; log in again with the new password' })
  @ApiConflictResponse({ description: CHANGED_MEANWHILE, type: ErrorResponseDto })
  @ApiBadRequestResponse({
    description: 'The new password breaks the rules',
    type: ErrorResponseDto,
  })
  @ApiLockedOut()
  async changePassword(
    @CurrentAccount() me: AuthenticatedAccount,
    @Body() body: ChangePasswordDto,
  ): Promise<void> {
    await this.accounts.changePassword(me.id, body.newPassword, { session: me });
  }

  @Delete()
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Delete the account: every row about it goes and every token is refused at once',
    description: 'Re-authentication: the body carries the password and the current second factor.',
  })
  @ApiBody({ type: ReauthenticationDto })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiConflictResponse({ description: CHANGED_MEANWHILE, type: ErrorResponseDto })
  @ApiLockedOut()
  async delete(
    @CurrentAccount() me: AuthenticatedAccount,
    @Body() _factors: ReauthenticationDto,
  ): Promise<void> {
    await this.accounts.delete(me.id, { session: me });
  }
}
