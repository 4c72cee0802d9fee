import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { createApp } from '../../sample-app/src/app.factory.js';
import { loadAppConfig, type AppConfig } from '../../sample-app/src/config/app.config.js';
import { generateJwk, writeJwks } from './keys.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './servers.js';

/** A sample app listening on a real socket, on its own database. */
export interface RunningApp {
  app: INestApplication;
  url: string;
  config: AppConfig;
  dataSource: DataSource;
  http: () => ReturnType<typeof request>;
  close(): Promise<void>;
}

/** Starts the sample app with `env` (as `npm start` would read it) on an ephemeral port. */
export async function startSampleApp(
  env: Record<string, string | undefined>,
  logger: LoggerService | LogLevel[] | false = false,
): Promise<RunningApp> {
  const config = loadAppConfig({ PORT: '0', ...env });
  // Swagger UI on Fastify needs @fastify/static, which Jest cannot load (a CommonJS package
  // requiring ES modules); the suites that run the built app as a process cover /docs there.
  const app = await createApp(config, { logger, openApi: config.httpAdapter !== 'fastify' });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  return {
    app,
    url,
    config,
    dataSource: app.get<DataSource>(getDataSourceToken()),
    http: () => request(url),
    close: () => app.close(),
  };
}

/** The `JWT_ISSUER` of every suite environment. */
export const SUITE_ISSUER = 'https://issuer.test';

/** A fresh database and key file for one suite, and the env that points the app at them. */
export interface SuiteEnvironment {
  database: TestDatabase;
  dir: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function createSuiteEnvironment(
  kind: DatabaseKind,
  extraEnv: Record<string, string> = {},
): Promise<SuiteEnvironment> {
  const database = await createTestDatabase(kind);
  const dir = mkdtempSync(join(tmpdir(), 'tfa-suite-'));
  const keysFile = writeJwks(dir, [generateJwk('ES256', 'suite-es256')]);
  return {
    database,
    dir,
    env: {
      DATABASE_URL: database.url,
      JWT_KEYS_FILE: keysFile,
      DATA_DIR: dir,
      JWT_ISSUER: SUITE_ISSUER,
      THROTTLE_LIMIT: '100000',
      ...extraEnv,
    },
    async cleanup() {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates an account over HTTP; returns its credentials. */
export async function signUp(
  running: RunningApp,
  username = `user-${Math.random().toString(36).slice(2, 10)}`,
  password = 'correct horse battery staple',
): Promise<{ id: string; username: string; password: string; secretKey: string }> {
  const res = await running.http().post('/accounts').send({ username, password }).expect(201);
  return { id: res.body.id, username, password, secretKey: res.body.secretKey };
}

/** Logs in over HTTP with the JSON body; returns the token pair. */
export async function logIn(
  running: RunningApp,
  creds: { username: string; password: string; secretKey: string },
): Promise<{ access_token: string; refresh_token: string }> {
  const res = await running
    .http()
    .post('/auth/token')
    .send({ username: creds.username, password: creds.password, secretKey: creds.secretKey })
    .expect(200);
  return res.body;
}
