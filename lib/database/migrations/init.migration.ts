import {
  Table,
  TableForeignKey,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
} from 'typeorm';
import { columnTypes, dialectOf } from '../dialect.js';

/** Creates the module's four tables, their keys and the indexes the lookups use. */
export class TwoFactorAuthInit1764201600000 implements MigrationInterface {
  name = 'TwoFactorAuthInit1764201600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const t = columnTypes(dialectOf(queryRunner));
    const uuid = (name: string, extra: object = {}) => ({
      name,
      type: t.uuid,
      length: t.uuidLength,
      ...extra,
    });
    const str = (name: string, length: number, extra: object = {}) => ({
      name,
      type: t.varchar,
      length: String(length),
      ...extra,
    });
    const big = (name: string, extra: object = {}) => ({ name, type: t.bigint, ...extra });

    await queryRunner.createTable(
      new Table({
        name: 'tfa_accounts',
        columns: [
          uuid('id', { isPrimary: true }),
          str('username', 255),
          str('username_key', 255),
          str('password_hash', 255),
          { name: 'disabled', type: t.bool, default: false },
          str('second_factor', 16, { default: "'secret-key'" }),
          big('tokens_valid_after', { default: 0 }),
          big('created_at'),
          big('updated_at'),
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
          uuid('id', { isPrimary: true }),
          uuid('account_id', { isUnique: true }),
          str('key_hash', 64),
          big('created_at'),
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'FK_tfa_secret_keys_account',
            columnNames: ['account_id'],
            referencedTableName: 'tfa_accounts',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          }),
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'tfa_issued_tokens',
        columns: [
          str('jti', 36, { isPrimary: true }),
          uuid('account_id'),
          str('type', 8),
          str('iss', 512),
          str('sub', 36),
          str('aud', 512, { isNullable: true }),
          str('kid', 128),
          big('iat'),
          big('nbf'),
          big('exp'),
          str('family_id', 36),
          str('parent_jti', 36, { isNullable: true }),
          str('replaced_by', 36, { isNullable: true }),
          big('revoked_at', { isNullable: true }),
          str('revoked_reason', 32, { isNullable: true }),
          big('created_at'),
        ],
        foreignKeys: [
          new TableForeignKey({
            name: 'FK_tfa_issued_tokens_account',
            columnNames: ['account_id'],
            referencedTableName: 'tfa_accounts',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          }),
        ],
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
          str('username_hash', 64, { isPrimary: true }),
          { name: 'failures', type: t.int, default: 0 },
          big('window_start', { default: 0 }),
          big('locked_until', { default: 0 }),
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
