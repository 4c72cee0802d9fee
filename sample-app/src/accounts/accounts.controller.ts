import { Body, Controller, Header, HttpCode, HttpStatus, Post, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiTooManyRequestsResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { AccountService, ErrorResponseDto, Public, TokenThrottlerGuard } from 'nestjs-rest-2fa';
import { CreateAccountDto, CreatedAccountDto } from './create-account.dto.js';

@ApiTags('accounts')
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountService) {}

  @Post()
  @Public()
  // Sign-up hashes a password too: it shares the per-client budget of the token routes.
  @UseGuards(TokenThrottlerGuard)
  @HttpCode(HttpStatus.CREATED)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Create an account; the response holds its secret key, shown this once',
  })
  @ApiCreatedResponse({ type: CreatedAccountDto })
  @ApiBadRequestResponse({
    description: 'Malformed input, or a weak password',
    type: ErrorResponseDto,
  })
  @ApiConflictResponse({ description: 'The username is taken', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({ description: 'Throttled; see Retry-After', type: ErrorResponseDto })
  @ApiServiceUnavailableResponse({ description: 'Database unavailable', type: ErrorResponseDto })
  async create(@Body() body: CreateAccountDto): Promise<CreatedAccountDto> {
    const { account, secretKey } = await this.accounts.create(body.username, body.password);
    return { id: account.id, username: account.username, secretKey };
  }
}
