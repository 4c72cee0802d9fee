import { ApiProperty, ApiPropertyOptional } from '../common/swagger.decorators.js';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import { OptionalField } from './optional-field.decorator.js';

/** No NUL or other C0 control characters (matching them is the point of these patterns). */
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
// eslint-disable-next-line no-control-regex
const NO_NUL = /^[^\u0000]*$/;

/**
 * The factors of a re-authentication: the account's password and its current second factor
 * (`secretKey`, or `otp` / `recoveryCode` for a TOTP account). Extend it for the body of a route
 * protected by `ReauthenticationGuard`, so that the validation pipe accepts these fields:
 * `class ChangeEmailDto extends ReauthenticationDto { @IsEmail() email!: string }`.
 */
export class ReauthenticationDto {
  @ApiProperty({ example: 'correct horse battery staple', maxLength: 1024 })
  @OptionalField()
  @IsString()
  @MaxLength(1024)
  @Matches(NO_NUL, { message: 'password must not contain NUL characters' })
  password?: string;

  @ApiPropertyOptional({
    description: 'The secret key shown when the account was created',
    example: 'q3J8xXoVbQ9w2m1ZrT5yKc7uNf0dHgLs4aPeWiBjY6E',
    maxLength: 256,
  })
  @OptionalField()
  @IsString()
  @MaxLength(256)
  @Matches(NO_CONTROL, { message: 'secretKey must not contain control characters' })
  secretKey?: string;

  @ApiPropertyOptional({
    description: 'For TOTP accounts: the current code',
    example: '123456',
    maxLength: 16,
  })
  @OptionalField()
  @IsString()
  @MaxLength(16)
  @Matches(/^\d*$/, { message: 'otp must contain digits only' })
  otp?: string;

  @ApiPropertyOptional({
    description: 'For TOTP accounts: one of the recovery codes (each works once)',
    example: 'K7QM-2XHD-9PTA-WC4E',
    maxLength: 64,
  })
  @OptionalField()
  @IsString()
  @MaxLength(64)
  @Matches(NO_CONTROL, { message: 'recoveryCode must not contain control characters' })
  recoveryCode?: string;
}

/** The names of the factor fields of `ReauthenticationDto`. */
export const FACTOR_FIELDS = ['password', 'secretKey', 'otp', 'recoveryCode'] as const;

/** Body of `POST /auth/token`: a username and the account's factors. */
export class TokenRequestDto extends ReauthenticationDto {
  @ApiProperty({ example: 'alice', maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  @Matches(NO_CONTROL, { message: 'username must not contain control characters' })
  username!: string;
}

/** Body of `POST /auth/refresh`. */
export class RefreshRequestDto {
  @ApiProperty({ description: 'A refresh token from /auth/token or /auth/refresh' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(8192)
  refresh_token!: string;
}

/** Optional body of `POST /auth/revoke` (RFC 7009). */
export class RevokeRequestDto {
  @ApiPropertyOptional({
    description: 'The token to revoke (access or refresh); default: the Bearer token',
  })
  @OptionalField()
  @IsString()
  @IsNotEmpty()
  @MaxLength(8192)
  token?: string;

  @ApiPropertyOptional({ enum: ['access_token', 'refresh_token'] })
  @OptionalField()
  @IsString()
  @MaxLength(32)
  token_type_hint?: string;
}

/** Response of `POST /auth/token` and `POST /auth/refresh`. */
export class TokenPairDto {
  @ApiProperty({ example: 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9…' })
  access_token!: string;

  @ApiProperty({
    example: 'Bearer',
    enum: ['Bearer', 'DPoP'],
    description: '`DPoP` when the request carried a DPoP proof: the tokens are bound to its key',
  })
  token_type!: 'Bearer' | 'DPoP';

  @ApiProperty({ example: 900, description: 'Seconds until the access token expires' })
  expires_in!: number;

  @ApiProperty({ example: 'eyJhbGciOiJFUzI1NiIsInR5cCI6InJ0K2p3dCIsImtpZCI6Ii4uLiJ9…' })
  refresh_token!: string;

  @ApiProperty({ example: 604800, description: 'Seconds until the refresh token expires' })
  refresh_expires_in!: number;
}

/** The JSON error shape of every failure (Nest's). */
export class ErrorResponseDto {
  @ApiProperty({ example: 401 })
  statusCode!: number;

  @ApiProperty({
    example: 'Invalid credentials',
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
  })
  message!: string | string[];

  @ApiProperty({ example: 'Unauthorized' })
  error!: string;
}
