import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { loadAppConfig } from './config/app.config.js';

async function bootstrap(): Promise<void> {
  const config = loadAppConfig(process.env);
  const app = await createApp(config);
  await app.listen(config.port, '0.0.0.0');
  new Logger('Bootstrap').log(`Listening on ${await app.getUrl()} (Swagger UI at /docs)`);
}

bootstrap().catch((error: unknown) => {
  // A configuration problem is explained in one line, without a stack trace.
  console.error(`Cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
