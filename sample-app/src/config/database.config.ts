import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TypeOrmModuleOptions } from '@nestjs/typeorm';
import { TWO_FACTOR_AUTH_ENTITIES, TWO_FACTOR_AUTH_MIGRATIONS } from 'nestjs-rest-2fa';
import type { AppConfig } from './app.config.js';
import { makePrivateDir } from './paths.js';

/** TypeORM options for the driver `DATABASE_URL` names; the module's migrations run on start. */
export function databaseOptions(config: AppConfig): TypeOrmModuleOptions {
  const common = {
    entities: [...TWO_FACTOR_AUTH_ENTITIES],
    migrations: [...TWO_FACTOR_AUTH_MIGRATIONS],
    migrationsRun: true,
    synchronize: false,
    retryAttempts: 3,
    retryDelay: 1000,
  };
  const { database } = config;
  if (database.kind === 'sqlite') {
    if (database.path !== ':memory:') {
      makePrivateDir(dirname(database.path));
      // better-sqlite3 would create the file 0644 (less the umask): create it 0600 first. SQLite
      // gives its -wal and -shm files the mode of the database file.
      closeSync(openSync(database.path, 'a', 0o600));
    }
    return {
      ...common,
      type: 'better-sqlite3',
      database: database.path,
      enableWAL: true,
      // Wait for a lock rather than fail at once when two processes share the file.
      timeout: 5000,
    };
  }
  if (database.kind === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: database.url,
      extra: { max: 10, connectionTimeoutMillis: 5000 },
    };
  }
  return {
    ...common,
    type: 'mysql',
    url: database.url,
    extra: { connectionLimit: 10, connectTimeout: 5000 },
  };
}
