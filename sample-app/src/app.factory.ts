import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import fastifyHelmet from '@fastify/helmet';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import helmet from 'helmet';
import { TwoFactorExceptionFilter, validateTwoFactorAuthOptions } from 'nestjs-rest-2fa';
import { AppModule, twoFactorOptions } from './app.module.js';
import type { AppConfig } from './config/app.config.js';
import { trustProxySetting } from './config/trust-proxy.js';
import { RefuseReservedKeysPipe, strictValidationPipe } from './validation.pipe.js';

/** Largest JSON body accepted, in bytes; login and sign-up bodies are far smaller. */
export const BODY_LIMIT_BYTES = 16 * 1024;

interface CreateAppOptions {
  logger?: LoggerService | LogLevel[] | false;
  /** Serve Swagger UI at /docs (default true). */
  openApi?: boolean;
}

/**
 * Builds the sample app (not listening yet) on Express or Fastify (`HTTP_ADAPTER`), with the
 * security defaults a reviewer expects: helmet headers, no X-Powered-By, no CORS, a small JSON
 * body limit, strict validation, and no library message or stack trace in any error.
 */
export async function createApp(
  config: AppConfig,
  { logger, openApi = true }: CreateAppOptions = {},
): Promise<INestApplication> {
  // Bad keys or options stop the start here, before anything connects to the database.
  validateTwoFactorAuthOptions(twoFactorOptions(config));
  const module = AppModule.forRoot(config);
  const common = {
    logger: logger ?? (['error', 'warn', 'log'] as LogLevel[]),
    abortOnError: false,
  };
  let app: INestApplication;
  if (config.httpAdapter === 'fastify') {
    const adapter = new FastifyAdapter({
      bodyLimit: BODY_LIMIT_BYTES,
      ...(config.trustProxy ? { trustProxy: trustProxySetting(config.trustProxy) } : {}),
    });
    // JSON only: no form parser from Nest (bodyParser: false) and not Fastify's own text/plain
    // parser, which would hand the routes a string they were never meant to see.
    adapter.getInstance().removeContentTypeParser('text/plain');
    const fastifyApp = await NestFactory.create<NestFastifyApplication>(module, adapter, {
      ...common,
      bodyParser: false,
    });
    await fastifyApp.register(fastifyHelmet as never);
    app = fastifyApp;
  } else {
    const expressApp = await NestFactory.create<NestExpressApplication>(
      module,
      new ExpressAdapter(),
      {
        ...common,
        bodyParser: false,
      },
    );
    // Helmet before the body parser, so that its refusals (400, 413) carry the headers too.
    expressApp.use(helmet());
    expressApp.useBodyParser('json', {
      limit: BODY_LIMIT_BYTES,
      strict: true,
      reviver: refuseObjectPrototypeKeys,
    });
    expressApp.disable('x-powered-by');
    // No ETag: Express hashes every body it sends for one, and these answers are per-account
    // JSON, the token ones `no-store`, never revalidated (Fastify sends none either).
    expressApp.set('etag', false);
    if (config.trustProxy) expressApp.set('trust proxy', trustProxySetting(config.trustProxy));
    app = expressApp;
  }
  app.useGlobalPipes(new RefuseReservedKeysPipe(), strictValidationPipe());
  app.useGlobalFilters(new TwoFactorExceptionFilter(app.get(HttpAdapterHost)));
  app.enableShutdownHooks();
  if (openApi) setUpOpenApi(app);
  return app;
}

/**
 * JSON reviver: a member named like a property of `Object.prototype` (`__proto__`,
 * `constructor`, `hasOwnProperty`, …) makes the body malformed (400). class-transformer drops
 * such keys silently, so the validation pipe would not refuse them as unknown fields.
 * (Fastify's parser already refuses `__proto__` and `constructor.prototype`.)
 */
function refuseObjectPrototypeKeys(key: string, value: unknown): unknown {
  if (Object.hasOwn(Object.prototype, key)) throw new SyntaxError('Reserved member name');
  return value;
}

/** The OpenAPI document of the app (module routes included). */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  return SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('nestjs-rest-2fa sample API')
      .setDescription(
        'Accounts with a password and a second factor (secret key or TOTP); JWT access and refresh tokens.',
      )
      .setVersion('0.1.0')
      .addBearerAuth()
      .addBasicAuth()
      .build(),
  );
}

/** Swagger UI at `/docs`, the document at `/docs-json`. */
export function setUpOpenApi(app: INestApplication): OpenAPIObject {
  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return document;
}
