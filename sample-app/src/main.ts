import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { loadAppConfig } from './config/app.config.js';
import { redactSecrets, SecretRedactingLogger, secretValues } from './secret-redacting.logger.js';

const secrets = secretValues(process.env);

/** The variable a failing start-up step depends on, when its error does not name one. */
let blame: 'DATABASE_URL' | 'PORT' | null = null;
/**
 * The error codes that step's failures carry: network errors and the drivers' own (a
 * PostgreSQL SQLSTATE, MySQL's `ER_…`, `SQLITE_…`) for the database; a file error (`ENOENT`,
 * `EACCES` on DATA_DIR) already names its path and is left as it is.
 */
const CODES = {
  DATABASE_URL:
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ER_\w+|SQLITE_\w+|\d[0-9A-Z]{4})$/,
  PORT: /^(EADDRINUSE|EACCES|EADDRNOTAVAIL)$/,
};

async function bootstrap(): Promise<void> {
  const config = loadAppConfig(process.env);
  const logger = new SecretRedactingLogger(secrets, { logLevels: ['error', 'warn', 'log'] });
  // A driver's or the network's error here comes from connecting to the database; the
  // module's own refusals name their option themselves.
  blame = 'DATABASE_URL';
  const app = await createApp(config, { logger });
  blame = 'PORT';
  await app.listen(config.port, '0.0.0.0');
  blame = null;
  new Logger('Bootstrap').log(`Listening on ${await app.getUrl()} (Swagger UI at /docs)`);
}

bootstrap().catch((error: unknown) => {
  // A configuration problem is explained in one line, without a stack trace, and without the
  // value of a secret even if a library's message quotes one.
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const named =
    blame && typeof code === 'string' && CODES[blame].test(code) ? `${blame}: ${message}` : message;
  console.error(`Cannot start: ${redactSecrets(named, secrets)}`);
  process.exit(1);
});
