import {
  Column,
  DataSource,
  Entity,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  Table,
  type MigrationInterface,
  type QueryRunner,
} from 'typeorm';
import { twoFactorAuthSchema, type TwoFactorEntityClass } from 'nestjs-rest-2fa';
import { resetAccounts } from '../../lib/core/accounts/account-entities.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';
import { dataSourceOptionsFor } from '../support/own-accounts.js';

/** An application's users with an integer id (auto-increment). */
@Entity({ name: 'app_users_int' })
class IntegerUser {
  @PrimaryGeneratedColumn()
  id!: number;
  @Column({ type: 'varchar', length: 254, unique: true })
  email!: string;
  @Column({ name: 'password_hash', type: 'varchar', length: 255 })
  passwordHash!: string;
}

/** An application's users with a generated uuid id. */
@Entity({ name: 'app_users_uuid' })
class UuidUser {
  @PrimaryGeneratedColumn('uuid')
  id!: string;
  @Column({ type: 'varchar', length: 254, unique: true })
  login!: string;
  @Column({ type: 'varchar', length: 255 })
  hash!: string;
  @Column({ type: 'boolean', default: false })
  blocked!: boolean;
}

/** An application's users with a string id of its own. */
@Entity({ name: 'app_users_str' })
class StringUser {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  key!: string;
  @Column({ type: 'varchar', length: 254 })
  name!: string;
  @Column({ type: 'varchar', length: 255 })
  secret!: string;
}

/** An application's own migration of its users table, dated after the module's default. */
class CreateIntegerUsers1790000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'app_users_int',
        columns: [
          {
            name: 'id',
            type: 'integer',
            isPrimary: true,
            isGenerated: true,
            generationStrategy: 'increment',
          },
          { name: 'email', type: 'varchar', length: '254', isUnique: true },
          { name: 'password_hash', type: 'varchar', length: '255' },
        ],
      }),
    );
  }
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('app_users_int');
  }
}

const APPS: [string, TwoFactorEntityClass, Record<string, string>][] = [
  ['integer', IntegerUser, { username: 'email' }],
  ['uuid', UuidUser, { username: 'login', passwordHash: 'hash', disabled: 'blocked' }],
  ['string', StringUser, { id: 'key', username: 'name', passwordHash: 'secret' }],
];

/**
 * Beside an application's own users table, the module's migrations create its tables keyed on
 * the application's id type, with foreign keys to it, and nothing is left for `synchronize` or
 * `migration:generate` to change: for integer, uuid and string ids on every database.
 */
describe.each(databases())('the module beside an own users table, on %s', (kind) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    resetAccounts();
    await database?.drop();
  });

  it.each(APPS)(
    'with %s ids: migrations leave no drift, and revert cleanly',
    async (_, entity, fields) => {
      database = await createTestDatabase(kind);
      const schema = twoFactorAuthSchema({ entity, fields });
      const base = dataSourceOptionsFor(kind, database.url);
      // The application's own table first, as its own migrations would make it.
      const app = new DataSource({ ...base, entities: [entity], synchronize: true });
      await app.initialize();
      await app.destroy();

      const migrated = new DataSource({
        ...base,
        entities: [entity, ...schema.entities],
        migrations: schema.migrations,
      });
      await migrated.initialize();
      try {
        expect(await migrated.runMigrations()).toHaveLength(1);
        const pending = (await migrated.driver.createSchemaBuilder().log()).upQueries;
        expect(pending.map((q) => q.query)).toEqual([]);
        const foreignKeys = (await migrated.createQueryRunner().getTable('tfa_account_states'))!
          .foreignKeys;
        expect(
          foreignKeys.map((fk) => [fk.referencedTableName.split('.').pop(), fk.onDelete]),
        ).toEqual([[migrated.getMetadata(entity).tableName, 'CASCADE']]);
        await migrated.undoLastMigration();
        expect(await migrated.createQueryRunner().hasTable('tfa_account_states')).toBe(false);
        expect(await migrated.createQueryRunner().hasTable('tfa_secret_keys')).toBe(false);
      } finally {
        await migrated.destroy();
      }
    },
  );

  it('runs after a users migration dated later when told to, and says what to do when not', async () => {
    database = await createTestDatabase(kind);
    const base = dataSourceOptionsFor(kind, database.url);
    const run = async (schema: ReturnType<typeof twoFactorAuthSchema>) => {
      const source = new DataSource({
        ...base,
        entities: [IntegerUser, ...schema.entities],
        migrations: [CreateIntegerUsers1790000000000, ...schema.migrations],
      });
      await source.initialize();
      try {
        return (await source.runMigrations({ transaction: 'each' })).map((m) => m.name);
      } finally {
        await source.destroy();
      }
    };
    const accounts = { entity: IntegerUser, fields: { username: 'email' } };
    await expect(run(twoFactorAuthSchema(accounts))).rejects.toThrow(
      'the table "app_users_int" of IntegerUser does not exist yet',
    );
    expect(() => twoFactorAuthSchema(accounts, { migrationTimestamp: 17900 })).toThrow(
      'option "migrationTimestamp" must be epoch milliseconds of 13 digits',
    );
    const later = twoFactorAuthSchema(accounts, { migrationTimestamp: 1790000000001 });
    expect(await run(later)).toEqual([
      'CreateIntegerUsers1790000000000',
      'TwoFactorAuthOwnAccounts1790000000001',
    ]);
  });
});
