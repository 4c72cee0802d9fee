import {
  Controller,
  HttpCode,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Post,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AccountService, ErrorResponseDto } from 'nestjs-rest-2fa';
import { Roles, RolesGuard } from './roles.guard.js';

/**
 * What an administrator (an account listed in `ADMIN_ACCOUNT_IDS`, so its tokens carry the `admin`
 * role) may do to other accounts.
 */
@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid token', type: ErrorResponseDto })
@ApiForbiddenResponse({ description: 'The token has no admin role', type: ErrorResponseDto })
@Controller('admin/accounts')
@UseGuards(RolesGuard)
@Roles('admin')
export class AdminController {
  constructor(private readonly accounts: AccountService) {}

  @Post(':id/disable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Disable an account: no more logins, every token refused at once' })
  @ApiNoContentResponse({ description: 'Disabled' })
  @ApiNotFoundResponse({ description: 'No such account', type: ErrorResponseDto })
  async disable(@Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    await this.accounts.disable(id);
  }

  @Post(':id/enable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Let a disabled account log in again' })
  @ApiNoContentResponse({ description: 'Enabled' })
  @ApiNotFoundResponse({ description: 'No such account', type: ErrorResponseDto })
  async enable(@Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    await this.accounts.enable(id);
  }
}
