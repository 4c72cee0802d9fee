import { DataSource, type DataSourceOptions } from 'typeorm';
import { TWO_FACTOR_AUTH_ENTITIES, TWO_FACTOR_AUTH_MIGRATIONS } from 'nestjs-rest-2fa';
import {
  createTestDatabase,
  databases,
  type DatabaseKind,
  type TestDatabase,
} from '../support/servers.js';

/**
 * The DataSource options an application would write for the database at `url`. MariaDB is
 * driven as `mariadb`: with `mysql`, TypeORM misreads MariaDB's column defaults and finds a
 * difference in every nullable column of any entity, the module's or not.
 */
function optionsFor(kind: DatabaseKind, url: string): DataSourceOptions {
  if (kind === 'sqlite') return { type: 'better-sqlite3', database: url.slice('sqlite:'.length) };
  return kind === 'postgres' ? { type: 'postgres', url } : { type: 'mariadb', url };
}

/**
 * The entities must declare everything the migrations create. Otherwise an application that
 * runs `migration:generate` or `synchronize` on its own DataSource (which lists the module's
 * entities) gets statements that drop or alter the module's indexes and columns, such as the
 * index the revocation poll reads. After the migrations, TypeORM's schema diff must be empty.
 */
describe.each(databases())('schema drift on %s', (kind) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const migrated = new DataSource({
      ...optionsFor(kind, database.url),
      migrations: [...TWO_FACTOR_AUTH_MIGRATIONS],
    });
    await migrated.initialize();
    try {
      await migrated.runMigrations();
    } finally {
      await migrated.destroy();
    }
  });

  afterAll(() => database?.drop());

  /** The statements `synchronize` would run against the migrated schema. */
  async function pendingChanges(): Promise<string[]> {
    const app = new DataSource({
      ...optionsFor(kind, database.url),
      entities: [...TWO_FACTOR_AUTH_ENTITIES],
    });
    await app.initialize();
    try {
      return (await app.driver.createSchemaBuilder().log()).upQueries.map((q) => q.query);
    } finally {
      await app.destroy();
    }
  }

  it('leaves nothing for synchronize or migration:generate to change', async () => {
    expect(await pendingChanges()).toEqual([]);
  });

  it('reverts the newest migration and applies it again to the same schema', async () => {
    const migrated = new DataSource({
      ...optionsFor(kind, database.url),
      migrations: [...TWO_FACTOR_AUTH_MIGRATIONS],
    });
    await migrated.initialize();
    try {
      await migrated.undoLastMigration();
      await migrated.runMigrations();
    } finally {
      await migrated.destroy();
    }
    expect(await pendingChanges()).toEqual([]);
  });
});
