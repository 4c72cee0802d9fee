import {
  Module,
  type DynamicModule,
  type INestApplication,
  type Provider,
  type Type,
} from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule, type TypeOrmModuleOptions } from '@nestjs/typeorm';
import request from 'supertest';
import { DataSource } from 'typeorm';
import {
  TWO_FACTOR_AUTH_ENTITIES,
  TWO_FACTOR_AUTH_MIGRATIONS,
  TwoFactorAuthModule,
  type TwoFactorAuthModuleOptions,
} from '../../lib/index.js';
import { generateJwk } from './keys.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './servers.js';

type ModuleImport = Type | DynamicModule;

/** One audit event as a listener receives it. */
export type CapturedEvent = { name: string } & Record<string, unknown>;

/**
 * An application of the module's own, without the sample app: a real database (one of the
 * three), the module's migrations, `TwoFactorAuthModule.forRoot()` with the given options and
 * the events it emits. For specs of module behaviour that need no sample route.
 */
export interface ModuleFixture {
  app: INestApplication;
  /** Base URL of the app, listening on a real socket (127.0.0.1, an ephemeral port). */
  url: string;
  http: () => ReturnType<typeof request>;
  dataSource: DataSource;
  events: CapturedEvent[];
  get<T>(type: Type<T>): T;
  close(): Promise<void>;
}

/** TypeORM options for a test database URL, with the module's entities and migrations. */
export function typeOrmOptionsFor(database: TestDatabase): TypeOrmModuleOptions {
  const common = {
    entities: [...TWO_FACTOR_AUTH_ENTITIES],
    migrations: [...TWO_FACTOR_AUTH_MIGRATIONS],
    migrationsRun: true,
    synchronize: false,
    // A fixture that fails to start must not keep reconnecting after its test ended.
    retryAttempts: 0,
  };
  if (database.kind === 'sqlite') {
    return { ...common, type: 'better-sqlite3', database: database.url.slice('sqlite:'.length) };
  }
  return {
    ...common,
    type: database.kind === 'postgres' ? 'postgres' : 'mysql',
    url: database.url,
  };
}

export async function createModuleFixture(
  kind: DatabaseKind,
  options: Partial<TwoFactorAuthModuleOptions> = {},
  app: { controllers?: Type[]; imports?: ModuleImport[]; providers?: Provider[] } = {},
): Promise<ModuleFixture> {
  const database = await createTestDatabase(kind);
  const events: CapturedEvent[] = [];
  // The connection as it starts, so that a module that fails to compile (a test of a refused
  // injection) can close it before its database goes: Nest goes on resolving the other
  // providers after the first error, and TypeORM would reopen a dropped SQLite directory.
  let connecting: Promise<DataSource> | undefined;

  class EventSink {
    @OnEvent('two-factor.**')
    capture(event: CapturedEvent): void {
      events.push(event);
    }
  }

  @Module({
    imports: [
      TypeOrmModule.forRootAsync({
        useFactory: () => typeOrmOptionsFor(database),
        dataSourceFactory: (options) => (connecting = new DataSource(options!).initialize()),
      }),
      EventEmitterModule.forRoot({ wildcard: true, delimiter: '.' }),
      ...(app.imports ?? []),
      TwoFactorAuthModule.forRoot({
        issuer: 'https://fixture.test',
        keys: [generateJwk('ES256', 'fixture-es256')],
        routes: false,
        ...options,
      } as TwoFactorAuthModuleOptions),
    ],
    controllers: app.controllers ?? [],
    providers: [EventSink, ...(app.providers ?? [])],
  })
  class FixtureModule {}

  let nest: INestApplication;
  try {
    const moduleRef = await Test.createTestingModule({ imports: [FixtureModule] }).compile();
    nest = moduleRef.createNestApplication({ logger: false });
    await nest.listen(0, '127.0.0.1');
  } catch (error) {
    await connecting?.then(
      (dataSource) => dataSource.destroy(),
      () => undefined,
    );
    await database.drop();
    throw error;
  }
  const { port } = nest.getHttpServer().address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    app: nest,
    url,
    http: () => request(url),
    dataSource: nest.get<DataSource>(getDataSourceToken()),
    events,
    get: (type) => nest.get(type),
    async close() {
      await nest.close();
      await database.drop();
    },
  };
}
