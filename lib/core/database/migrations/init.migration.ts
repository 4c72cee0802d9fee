import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { accountForeignKey, columnsFor } from '../dialect.js';

/** Creates the module's four tables, their keys and the indexes the lookups use. */
export class TwoFactorAuthInit1764201600000 implements MigrationInterface {
  name = 'TwoFactorAuthInit1764201600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = columnsFor(queryRunner);
    await queryRunner.createTable(
      new Table({
        name: 'tfa_accounts',
        columns: [
          c.uuid('id', { isPrimary: true }),
          c.varchar('username', 255),
          c.exactVarchar('username_key', 255),
          c.varchar('password_hash', 255),
          c.bool('disabled', { default: false }),
          c.varchar('second_factor', 16, { default: "'secret-key'" }),
          c.bigint('tokens_valid_after', { default: 0 }),
          c.bigint('created_at'),
          c.bigint('updated_at'),
        ],
        indices: [
          new TableIndex({
            name: 'UQ_tfa_accounts_username_key',
            columnNames: ['username_key'],
            isUnique: true,
          }),
          new TableIndex({
            name: 'IDX_tfa_accounts_valid_after',
            columnNames: ['tokens_valid_after'],
          }),
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'tfa_secret_keys',
        columns: [
          c.uuid('id', { isPrimary: true }),
          c.uuid('account_id', { isUnique: true }),
          c.varchar('key_hash', 64),
          c.bigint('created_at'),
        ],
        foreignKeys: [accountForeignKey('tfa_secret_keys')],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'tfa_issued_tokens',
        columns: [
          c.varchar('jti', 36, { isPrimary: true }),
          c.uuid('account_id'),
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
        ],
        foreignKeys: [accountForeignKey('tfa_issued_tokens')],
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
        name: 'tfa_login_attempts',
        columns: [
          c.varchar('username_hash', 64, { isPrimary: true }),
          c.int('failures', { default: 0 }),
          c.bigint('window_start', { default: 0 }),
          c.bigint('locked_until', { default: 0 }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'tfa_login_attempts',
      'tfa_issued_tokens',
      'tfa_secret_keys',
      'tfa_accounts',
    ]) {
      await queryRunner.dropTable(table, true);
    }
  }
}
