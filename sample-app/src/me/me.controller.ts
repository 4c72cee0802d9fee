import { Controller, Get, Header, HttpCode, HttpStatus, Post } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import {
  CurrentAccount,
  ErrorResponseDto,
  SecretKeyService,
  type AuthenticatedAccount,
} from 'nestjs-rest-2fa';

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

/** Routes of the logged-in account; the global `JwtTwoFactorGuard` protects them. */
@ApiTags('me')
@ApiBearerAuth()
@ApiUnauthorizedResponse({
  description: 'Missing, invalid, expired or revoked access token',
  type: ErrorResponseDto,
})
@ApiServiceUnavailableResponse({
  description: 'Revocation state cannot be checked',
  type: ErrorResponseDto,
})
@Controller('me')
export class MeController {
  constructor(private readonly secretKeys: SecretKeyService) {}

  @Get()
  @ApiOperation({ summary: 'The account the access token belongs to' })
  @ApiOkResponse({ type: MeDto })
  me(@CurrentAccount() account: AuthenticatedAccount): MeDto {
    return { id: account.id, username: account.username };
  }

  @Post('secret-key')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Rotate the secret key: the old key and every token of the account stop working',
  })
  @ApiOkResponse({ type: NewSecretKeyDto })
  async rotate(@CurrentAccount('id') accountId: string): Promise<NewSecretKeyDto> {
    return { secretKey: await this.secretKeys.rotate(accountId) };
  }
}
