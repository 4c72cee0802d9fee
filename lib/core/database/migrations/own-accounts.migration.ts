import {
  Table,
  TableForeignKey,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';
import { ownAccounts } from '../../accounts/account-entities.js';
import { AccountState } from '../../accounts/account-state.entity.js';
import { columnsFor, dialectOf } from '../dialect.js';

/** The tables whose `account_id` references `tfa_account_states`. */
const CHILDREN = [
  'tfa_secret_keys',
  'tfa_issued_tokens',
  'tfa_token_families',
  'tfa_totp_credentials',
  'tfa_recovery_codes',
];

/**
 * The module's tables beside an application's own users table (`accounts` option), in their
 * current shape: per-account state in `tfa_account_states`, keyed by the application's id
 * (same column type, so the foreign key holds, deleted with the user), and every other
 * per-account table keyed on it. No `tfa_accounts`. Run instead of `TWO_FACTOR_AUTH_MIGRATIONS`
 * (see `twoFactorAuthSchema`).
 */
export class TwoFactorAuthOwnAccounts1767225600000 implements MigrationInterface {
  name = 'TwoFactorAuthOwnAccounts1767225600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const own = ownAccounts();
    if (!own) {
      throw new Error(
        'nestjs-rest-2fa: these migrations are for an application with its own users table; list them with twoFactorAuthSchema({ entity, fields }) in the DataSource that runs them.',
      );
    }
    const users = queryRunner.connection.getMetadata(own.entity);
    const idColumn = users.findColumnWithPropertyName(own.fields.id);
    if (!idColumn)
      throw new Error(`nestjs-rest-2fa: ${users.name} has no column "${own.fields.id}"`);
    if (!(await queryRunner.hasTable(users.tablePath))) {
      throw new Error(
        `nestjs-rest-2fa: the table "${users.tablePath}" of ${users.name} does not exist yet. TypeORM runs migrations in the order of the timestamps that end their names, and ${this.name} comes before the one that creates it: give it a later one with twoFactorAuthSchema(accounts, { migrationTimestamp: Date.now() }) (written down once, as a number, never changed), or create the table first.`,
      );
    }
    const c = columnsFor(queryRunner);
    const id = (name: string): TableColumnOptions => c.varchar(name, 36);
    // `account_id` exactly as the entities declare it: the application's id type (integer,
    // uuid, varchar…), as TypeORM maps it for this database, so the foreign keys hold.
    const stateId = queryRunner.connection
      .getMetadata(AccountState)
      .findColumnWithPropertyName('id')!;
    const driver = queryRunner.connection.driver;
    const accountId = (extra: Partial<TableColumnOptions> = {}): TableColumnOptions => ({
      name: 'account_id',
      type: driver.normalizeType(stateId),
      length: driver.getColumnLength(stateId) || undefined,
      unsigned: stateId.unsigned,
      isNullable: false,
      ...extra,
    });
    const toStates = (table: string) =>
      new TableForeignKey({
        name: `FK_${table}_account`,
        columnNames: ['account_id'],
        referencedTableName: 'tfa_account_states',
        referencedColumnNames: ['account_id'],
        onDelete: 'CASCADE',
        onUpdate: 'NO ACTION',
      });

    await queryRunner.createTable(
      new Table({
        name: 'tfa_account_states',
        columns: [
          accountId({ isPrimary: true }),
          c.varchar('second_factor', 16, { default: "'secret-key'" }),
          c.int('token_epoch', { default: 0 }),
          c.bigint('tokens_valid_after', { default: 0 }),
          c.bigint('created_at'),
          c.bigint('updated_at'),
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'FK_tfa_account_states_account',
            columnNames: ['account_id'],
            referencedTableName: users.tablePath,
            referencedColumnNames: [idColumn.databaseName],
            onDelete: 'CASCADE',
            onUpdate: 'NO ACTION',
          }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_secret_keys',
        columns: [
          id('id'),
          accountId({ isUnique: true }),
          c.varchar('key_hash', 64),
          c.bigint('created_at'),
        ].map(primary('id')),
        foreignKeys: [toStates('tfa_secret_keys')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_issued_tokens',
        columns: [
          id('jti'),
          accountId(),
          c.varchar('type', 8),
          c.varchar('iss', 512),
          c.varchar('sub', 36),
          c.varchar('aud', 512, { isNullable: true }),
          c.varchar('kid', 128),
          c.bigint('iat'),
          c.bigint('nbf'),
          c.bigint('exp'),
          c.varchar('family_id', 36),
          c.varchar('parent_jti', 36, { isNullable: true }),
          c.varchar('replaced_by', 36, { isNullable: true }),
          c.bigint('revoked_at', { isNullable: true }),
          c.varchar('revoked_reason', 32, { isNullable: true }),
          c.bigint('created_at'),
        ].map(primary('jti')),
        foreignKeys: [toStates('tfa_issued_tokens')],
        indices: [
          new TableIndex({ name: 'IDX_tfa_issued_tokens_account', columnNames: ['account_id'] }),
          new TableIndex({ name: 'IDX_tfa_issued_tokens_family', columnNames: ['family_id'] }),
          new TableIndex({ name: 'IDX_tfa_issued_tokens_exp', columnNames: ['exp'] }),
          new TableIndex({ name: 'IDX_tfa_issued_tokens_revoked_at', columnNames: ['revoked_at'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_token_families',
        columns: [
          id('id'),
          accountId(),
          c.int('epoch', { default: 0 }),
          c.bigint('revoked_at', { isNullable: true }),
          c.bigint('created_at'),
        ].map(primary('id')),
        foreignKeys: [toStates('tfa_token_families')],
        indices: [
          new TableIndex({ name: 'IDX_tfa_token_families_account', columnNames: ['account_id'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_totp_credentials',
        columns: [
          id('id'),
          accountId({ isUnique: true }),
          c.varchar('secret_ciphertext', 255),
          c.varchar('key_id', 64),
          c.varchar('status', 8),
          c.bigint('last_used_step', { default: 0 }),
          c.bigint('created_at'),
        ].map(primary('id')),
        foreignKeys: [toStates('tfa_totp_credentials')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_recovery_codes',
        columns: [
          id('id'),
          accountId(),
          c.varchar('code_hash', 64),
          c.bigint('used_at', { isNullable: true }),
          c.bigint('created_at'),
        ].map(primary('id')),
        foreignKeys: [toStates('tfa_recovery_codes')],
        indices: [
          new TableIndex({ name: 'IDX_tfa_recovery_codes_account', columnNames: ['account_id'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_login_attempts',
        columns: [
          c.varchar('username_hash', 64, { isPrimary: true }),
          c.int('failures', { default: 0 }),
          c.bigint('window_start', { default: 0 }),
          c.bigint('locked_until', { default: 0 }),
          c.int('in_flight', { default: 0 }),
          c.bigint('in_flight_since', { default: 0 }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_revocations',
        columns: [
          c.varchar('id', 36, { isPrimary: true }),
          c.varchar('kind', 8),
          c.varchar('subject', 36),
          c.bigint('valid_after', { isNullable: true }),
          c.bigint('exp'),
          c.bigint('recorded_at'),
        ],
        indices: [
          new TableIndex({ name: 'IDX_tfa_revocations_recorded_at', columnNames: ['recorded_at'] }),
          new TableIndex({ name: 'IDX_tfa_revocations_exp', columnNames: ['exp'] }),
        ],
      }),
    );
    if (dialectOf(queryRunner) === 'mysql') await renameOneToOneIndexes(queryRunner);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['tfa_revocations', 'tfa_login_attempts', ...[...CHILDREN].reverse()]) {
      await queryRunner.dropTable(table, true);
    }
    await queryRunner.dropTable('tfa_account_states', true);
  }
}

function primary(name: string) {
  return (column: TableColumnOptions): TableColumnOptions =>
    column.name === name ? { ...column, isPrimary: true } : column;
}

/**
 * MySQL/MariaDB keep a one-to-one's unique key as an index, which TypeORM names `REL_…` for the
 * relation (see the alignment migration of the default store: same tables, same names).
 */
async function renameOneToOneIndexes(queryRunner: QueryRunner): Promise<void> {
  for (const [table, hash] of [
    ['tfa_secret_keys', 'ecf1af96ed29168b5a43226a67c'],
    ['tfa_totp_credentials', '064366054c801424b1c70e71f65'],
  ]) {
    await queryRunner.query(
      `ALTER TABLE \`${table}\` RENAME INDEX \`UQ_${hash}\` TO \`REL_${hash.slice(0, 26)}\``,
    );
  }
}
