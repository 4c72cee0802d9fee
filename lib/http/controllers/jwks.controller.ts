import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '../common/swagger.decorators.js';
import { Public } from '../decorators/public.decorator.js';
import { KeyRing } from '../../core/keys/key-ring.js';

/** Publishes the public halves of the asymmetric keys (RFC 7517) for other services. */
@ApiTags('auth')
@Controller('.well-known')
export class JwksController {
  constructor(private readonly keyRing: KeyRing) {}

  @Get('jwks.json')
  @Public()
  @Header('Cache-Control', 'public, max-age=300, must-revalidate')
  @ApiOperation({ summary: 'The public JSON Web Key Set (empty for HMAC-only key rings)' })
  @ApiOkResponse({
    description: 'JWK Set',
    schema: {
      type: 'object',
      properties: { keys: { type: 'array', items: { type: 'object' } } },
      example: {
        keys: [{ kty: 'EC', crv: 'P-256', x: '…', y: '…', kid: 'k1', alg: 'ES256', use: 'sig' }],
      },
    },
  })
  jwks(): { keys: Record<string, unknown>[] } {
    return this.keyRing.publicJwks();
  }
}
