import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { loadAppConfig } from './config/app.config.js';
import { redactSecrets, SecretRedactingLogger, secretValues } from './secret-redacting.logger.js';

const secrets = secretValues(process.env);

async function bootstrap(): Promise<void> {
  const config = loadAppConfig(process.env);
  const logger = new SecretRedactingLogger(secrets, { logLevels: ['error', 'warn', 'log'] });
  const app = await createApp(config, { logger });
  await app.listen(config.port, '0.0.0.0');
  new Logger('Bootstrap').log(`Listening on ${await app.getUrl()} (Swagger UI at /docs)`);
}

bootstrap().catch((error: unknown) => {
  // A configuration problem is explained in one line, without a stack trace, and without the
  // value of a secret even if a library's message quotes one.
  const message = error instanceof Error ? error.message : String(error);
  console.error(`Cannot start: ${redactSecrets(message, secrets)}`);
  process.exit(1);
});
