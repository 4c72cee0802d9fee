import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { accountForeignKey, columnsFor } from '../dialect.js';

/** TOTP credentials and recovery codes. */
export class TwoFactorAuthTotp1764288000000 implements MigrationInterface {
  name = 'TwoFactorAuthTotp1764288000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = columnsFor(queryRunner);
    await queryRunner.createTable(
      new Table({
        name: 'tfa_totp_credentials',
        columns: [
          c.uuid('id', { isPrimary: true }),
          c.uuid('account_id', { isUnique: true }),
          c.varchar('secret_ciphertext', 255),
          c.varchar('key_id', 64),
          c.varchar('status', 8),
          c.bigint('last_used_step', { default: 0 }),
          c.bigint('created_at'),
        ],
        foreignKeys: [accountForeignKey('tfa_totp_credentials')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_recovery_codes',
        columns: [
          c.uuid('id', { isPrimary: true }),
          c.uuid('account_id'),
          c.varchar('code_hash', 64),
          c.bigint('used_at', { isNullable: true }),
          c.bigint('created_at'),
        ],
        foreignKeys: [accountForeignKey('tfa_recovery_codes')],
        indices: [
          new TableIndex({ name: 'IDX_tfa_recovery_codes_account', columnNames: ['account_id'] }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('tfa_recovery_codes', true);
    await queryRunner.dropTable('tfa_totp_credentials', true);
  }
}
