import {
  Body,
  Headers,
  HttpCode,
  HttpException,
  HttpStatus,
  NotFoundException,
  Post,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBasicAuth,
  ApiBody,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
  ApiUnauthorizedResponse,
} from '../common/swagger.decorators.js';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';
import { OptionalField } from '../dto/optional-field.decorator.js';
import { parseBasicCredentials } from '../common/http-basic.util.js';
import { setResponseHeader } from '../common/http.util.js';
import { TwoFactorExceptionFilter } from '../errors/two-factor-exception.filter.js';
import { validateBody } from '../common/validate-body.util.js';
import { Public } from '../decorators/public.decorator.js';
import { TokenThrottlerGuard } from '../guards/token-throttler.guard.js';
import { ErrorResponseDto } from '../dto/token-request.dto.js';
import {
  IntrospectionService,
  type IntrospectionResponse,
} from '../../core/tokens/introspection.service.js';

/** Body of `POST /auth/introspect` (RFC 7662 §2.1, as JSON). */
export class IntrospectionRequestDto {
  @ApiProperty({ description: 'The token to inspect (access or refresh)' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(8192)
  token!: string;

  @ApiPropertyOptional({ enum: ['access_token', 'refresh_token'] })
  @OptionalField()
  @IsString()
  @MaxLength(32)
  token_type_hint?: string;
}

/** `POST <prefix>/introspect`: mounted with the token routes; 404 unless clients are configured. */
@ApiTags('auth')
@UseFilters(TwoFactorExceptionFilter)
@UseGuards(TokenThrottlerGuard)
export class IntrospectionRoutes {
  constructor(private readonly introspection: IntrospectionService) {}

  @Post('introspect')
  @Public()
  @HttpCode(HttpStatus.OK)
  @ApiBasicAuth()
  @ApiOperation({
    summary: 'Token introspection (RFC 7662) for resource servers',
    description:
      'Callers authenticate with the client id and secret configured in `introspection.clients`.',
  })
  @ApiBody({ type: IntrospectionRequestDto })
  @ApiOkResponse({
    description: '`{"active": false}` or the claims with `"active": true`',
    schema: {
      example: {
        active: true,
        token_type: 'access_token',
        sub: '…',
        username: 'alice',
        exp: 1700000000,
      },
    },
  })
  @ApiUnauthorizedResponse({
    description: 'Missing or wrong client credentials',
    type: ErrorResponseDto,
  })
  @ApiNotFoundResponse({ description: 'Introspection is not configured', type: ErrorResponseDto })
  introspect(
    @Headers('authorization') authorization: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<IntrospectionResponse> {
    if (!this.introspection.enabled) {
      // The documented error shape, {statusCode, message, error}, like every other error.
      throw new NotFoundException('Introspection is not configured on this server');
    }
    setResponseHeader(response, 'Cache-Control', 'no-store');
    const client = parseBasicCredentials(authorization);
    if (!client || !this.introspection.authenticateClient(client.user, client.password)) {
      setResponseHeader(response, 'WWW-Authenticate', 'Basic realm="introspection"');
      throw new HttpException(
        { statusCode: 401, message: 'Invalid client credentials', error: 'Unauthorized' },
        HttpStatus.UNAUTHORIZED,
      );
    }
    const { token } = validateBody(IntrospectionRequestDto, ['token', 'token_type_hint'], body);
    return this.introspection.introspect(token);
  }
}
