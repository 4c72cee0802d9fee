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
  ApiBearerAuth,
  ApiBody,
  ApiTooManyRequestsResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import QRCode from 'qrcode';
import { CHANGED_MEANWHILE } from './changed-meanwhile.js';
import {
  CurrentAccount,
  ErrorResponseDto,
  type AuthenticatedAccount,
  ReauthenticationDto,
  ReauthenticationGuard,
  TotpService,
} from 'nestjs-rest-2fa';

class OtpDto {
  @ApiProperty({ example: '123456', description: 'A current code from the authenticator app' })
  @IsString()
  @Matches(/^\d{6,8}$/, { message: 'otp must be 6 to 8 digits' })
  otp!: string;
}

class TotpEnrolmentDto {
  @ApiProperty({
    description: 'base32 secret (160 bits), for manual entry',
    example: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  })
  secret!: string;

  @ApiProperty({
    example:
      'otpauth://totp/nestjs-rest-2fa-sample:alice?issuer=…&secret=…&algorithm=SHA1&digits=6&period=30',
  })
  otpauthUri!: string;

  @ApiProperty({
    description: 'The URI as a QR code (PNG data URI)',
    example: 'data:image/png;base64,iVBORw0KGgo…',
  })
  qrCode!: string;
}

class RecoveryCodesDto {
  @ApiProperty({
    type: [String],
    description: 'Single-use recovery codes, shown once',
    example: ['K7QM-2XHD-9PTA-WC4E'],
  })
  recoveryCodes!: string[];
}

class TotpStatusDto {
  @ApiProperty() enabled!: boolean;
  @ApiProperty() pending!: boolean;
  @ApiProperty({ example: 10 }) recoveryCodesRemaining!: number;
}

class TotpDisabledDto {
  @ApiProperty({ description: 'A fresh secret key: the second factor again' })
  secretKey!: string;
}

/** TOTP enrolment for the logged-in account (the global guard protects every route). */
@ApiTags('me')
@ApiBearerAuth()
@ApiUnauthorizedResponse({
  description: 'Missing or invalid access token, or a wrong code',
  type: ErrorResponseDto,
})
@ApiNotFoundResponse({
  description: 'TOTP is off on this server, or not enrolled',
  type: ErrorResponseDto,
})
@ApiTooManyRequestsResponse({
  description: 'Locked out after wrong codes or factors; see Retry-After',
  type: ErrorResponseDto,
})
@Controller('me/totp')
export class TotpController {
  constructor(private readonly totp: TotpService) {}

  @Get()
  @ApiOperation({ summary: 'TOTP state and remaining recovery codes' })
  @ApiOkResponse({ type: TotpStatusDto })
  status(@CurrentAccount('id') accountId: string): Promise<TotpStatusDto> {
    return this.totp.status(accountId);
  }

  @Post()
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Start TOTP enrolment (pending until confirmed, and it expires)',
    description: 'Re-authentication: the body carries the password and the current secret key.',
  })
  @ApiBody({ type: ReauthenticationDto })
  @ApiOkResponse({ type: TotpEnrolmentDto })
  @ApiConflictResponse({ description: 'TOTP is already enabled', type: ErrorResponseDto })
  async begin(
    @CurrentAccount('id') accountId: string,
    @Body() _factors: ReauthenticationDto,
  ): Promise<TotpEnrolmentDto> {
    const enrolment = await this.totp.begin(accountId);
    // The module returns the URI only; this app draws it for clients that cannot.
    const qrCode = await QRCode.toDataURL(enrolment.otpauthUri, { errorCorrectionLevel: 'M' });
    return { ...enrolment, qrCode };
  }

  @Post('confirm')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary:
      'Confirm with a code: TOTP becomes the second factor; recovery codes are returned once',
  })
  @ApiOkResponse({ type: RecoveryCodesDto })
  @ApiConflictResponse({ description: CHANGED_MEANWHILE, type: ErrorResponseDto })
  async confirm(
    @CurrentAccount() me: AuthenticatedAccount,
    @Body() body: OtpDto,
  ): Promise<RecoveryCodesDto> {
    return { recoveryCodes: await this.totp.confirm(me.id, body.otp, { session: me }) };
  }

  @Post('recovery-codes')
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'New recovery codes (the old ones stop working)',
    description: 'Re-authentication: the body carries the password and a code (`otp`).',
  })
  @ApiBody({ type: ReauthenticationDto })
  @ApiOkResponse({ type: RecoveryCodesDto })
  async regenerate(
    @CurrentAccount('id') accountId: string,
    @Body() _factors: ReauthenticationDto,
  ): Promise<RecoveryCodesDto> {
    return { recoveryCodes: await this.totp.regenerateRecoveryCodes(accountId) };
  }

  @Delete()
  @UseGuards(ReauthenticationGuard)
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Turn TOTP off; returns a fresh secret key',
    description:
      'Re-authentication: the body carries the password and a code (`otp`) or a recovery code.',
  })
  @ApiBody({ type: ReauthenticationDto })
  @ApiOkResponse({ type: TotpDisabledDto })
  @ApiConflictResponse({ description: CHANGED_MEANWHILE, type: ErrorResponseDto })
  async disable(
    @CurrentAccount() me: AuthenticatedAccount,
    @Body() _factors: ReauthenticationDto,
  ): Promise<TotpDisabledDto> {
    return { secretKey: await this.totp.disable(me.id, { session: me }) };
  }
}
