import type * as Swagger from '@nestjs/swagger';
import { importOptionalPeer } from '../../core/common/optional-peer.util.js';

/**
 * The `@nestjs/swagger` decorators the module's routes and DTOs carry, made optional:
 * `@nestjs/swagger` is an optional peer, so an application without it gets no API metadata and
 * never loads it. Decorators run when a class is defined, before an ES module can finish a
 * dynamic `import()` (and a static one would make the package required), so each application
 * is recorded and replayed once the import settles; after that they apply at once.
 * `SWAGGER_METADATA_APPLIED` (awaited by a provider of the module) settles before
 * `NestFactory.create()` returns, so `SwaggerModule.createDocument()` sees every one.
 */
type SwaggerApi = typeof Swagger;
type AnyDecorator = (
  target: object,
  key?: string | symbol,
  descriptor?: PropertyDescriptor,
) => void;
type Application = (swagger: SwaggerApi) => void;

/** `undefined` while the import runs, `null` when the package is not installed. */
let swagger: SwaggerApi | null | undefined;
const pending: Application[] = [];

export const SWAGGER_METADATA_APPLIED: Promise<void> = importOptionalPeer(
  '@nestjs/swagger',
  () => import('@nestjs/swagger'),
).then((loaded) => {
  swagger = loaded;
  for (const apply of pending.splice(0)) if (loaded) apply(loaded);
});
// A broken installation is reported by the provider that awaits it, not as an unhandled rejection.
SWAGGER_METADATA_APPLIED.catch(() => undefined);

type DecoratorName = {
  [K in keyof SwaggerApi]: K extends `Api${string}` ? K : never;
}[keyof SwaggerApi];

function optional<K extends DecoratorName>(name: K) {
  return (...args: Parameters<SwaggerApi[K]>): AnyDecorator =>
    (target, key, descriptor) => {
      const apply: Application = (api) =>
        (api[name] as (...a: unknown[]) => AnyDecorator)(...args)(target, key, descriptor);
      if (swagger === undefined) pending.push(apply);
      else if (swagger) apply(swagger);
    };
}

export const ApiBadRequestResponse = optional('ApiBadRequestResponse');
export const ApiBasicAuth = optional('ApiBasicAuth');
export const ApiBearerAuth = optional('ApiBearerAuth');
export const ApiBody = optional('ApiBody');
export const ApiHeader = optional('ApiHeader');
export const ApiNoContentResponse = optional('ApiNoContentResponse');
export const ApiNotFoundResponse = optional('ApiNotFoundResponse');
export const ApiOkResponse = optional('ApiOkResponse');
export const ApiOperation = optional('ApiOperation');
export const ApiProperty = optional('ApiProperty');
export const ApiPropertyOptional = optional('ApiPropertyOptional');
export const ApiServiceUnavailableResponse = optional('ApiServiceUnavailableResponse');
export const ApiTags = optional('ApiTags');
export const ApiTooManyRequestsResponse = optional('ApiTooManyRequestsResponse');
export const ApiUnauthorizedResponse = optional('ApiUnauthorizedResponse');
