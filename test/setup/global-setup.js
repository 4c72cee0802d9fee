/**
 * Finds out which real servers answer before any suite runs. Suites for an absent server are
 * skipped, and this says so; with CI=true an absent server fails the run instead.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Redis } from 'ioredis';

export const SERVERS = {
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mariadb: process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
};

async function answers(name) {
  try {
    if (name === 'postgres') {
      const client = new pg.Client({
        connectionString: SERVERS.postgres,
        connectionTimeoutMillis: 2000,
      });
      await client.connect();
      await client.query('select 1');
      await client.end();
    } else if (name === 'mariadb') {
      const conn = await mysql.createConnection({ uri: SERVERS.mariadb, connectTimeout: 2000 });
      await conn.query('select 1');
      await conn.end();
    } else {
      const redis = new Redis(SERVERS.redis, {
        lazyConnect: true,
        connectTimeout: 2000,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      await redis.connect();
      await redis.ping();
      redis.disconnect();
    }
    return true;
  } catch {
    return false;
  }
}

export default async function globalSetup() {
  const names = ['postgres', 'mariadb', 'redis'];
  const up = await Promise.all(names.map(answers));
  const missing = names.filter((_, i) => !up[i]);
  process.env.TFA_TEST_SERVERS = ['sqlite', ...names.filter((_, i) => up[i])].join(',');
  process.env.TEST_POSTGRES_URL = SERVERS.postgres;
  process.env.TEST_MARIADB_URL = SERVERS.mariadb;
  process.env.TEST_REDIS_URL = SERVERS.redis;
  if (missing.length > 0) {
    if (process.env.CI === 'true') {
      throw new Error(
        `CI=true but these servers do not answer: ${missing.join(', ')} (see .ci/run, which starts them)`,
      );
    }
    console.warn(
      `\n[nestjs-rest-2fa tests] SKIPPING the suites of servers that do not answer: ${missing.join(', ')}\n`,
    );
  }
}
