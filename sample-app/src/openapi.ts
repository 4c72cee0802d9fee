import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOpenApiDocument, createApp } from './app.factory.js';
import { loadAppConfig } from './config/app.config.js';

/**
 * `npm run openapi`: writes the sample app's OpenAPI document to `openapi.json` (or the path
 * given as the first argument). The app is built on a throw-away SQLite file and never listens.
 */
async function main(): Promise<void> {
  const target = process.argv[2] ?? 'openapi.json';
  const dir = mkdtempSync(join(tmpdir(), 'tfa-openapi-'));
  try {
    const config = loadAppConfig({
      DATA_DIR: dir,
      DATABASE_URL: `sqlite:${join(dir, 'openapi.sqlite')}`,
      INTROSPECTION_CLIENTS: 'docs:an-introspection-secret-only-for-the-docs',
    });
    const app = await createApp(config, { logger: ['error'] });
    await app.init();
    writeFileSync(target, `${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`);
    await app.close();
    process.stdout.write(`Wrote ${target}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
