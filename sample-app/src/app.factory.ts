import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { TwoFactorExceptionFilter } from 'nestjs-rest-2fa';
import { AppModule } from './app.module.js';
import type { AppConfig } from './config/app.config.js';
import { strictValidationPipe } from './validation.pipe.js';

/** Largest JSON body accepted; login and sign-up bodies are far smaller. */
export const BODY_LIMIT = '16kb';

/** Builds the sample app (not listening yet), with the security defaults a reviewer expects. */
export async function createApp(
  config: AppConfig,
  { logger }: { logger?: LoggerService | LogLevel[] | false } = {},
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config),
    new ExpressAdapter(),
    {
      bodyParser: false,
      logger: logger ?? ['error', 'warn', 'log'],
      abortOnError: false,
    },
  );
  app.useBodyParser('json', { limit: BODY_LIMIT, strict: true });
  app.disable('x-powered-by');
  if (config.trustProxy !== undefined) app.set('trust proxy', parseTrustProxy(config.trustProxy));
  app.use(helmet());
  app.useGlobalPipes(strictValidationPipe());
  app.useGlobalFilters(new TwoFactorExceptionFilter(app.get(HttpAdapterHost)));
  app.enableShutdownHooks();
  setUpOpenApi(app);
  return app;
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return /^\d+$/.test(value) ? Number(value) : value;
}

/** Swagger UI at `/docs`, the document at `/docs-json`. */
export function setUpOpenApi(app: INestApplication) {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('nestjs-rest-2fa sample API')
      .setDescription('Accounts with a password and a secret key; JWT access and refresh tokens.')
      .setVersion('0.1.0')
      .addBearerAuth()
      .addBasicAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return document;
}
