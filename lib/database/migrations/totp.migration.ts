import {
  Table,
  TableForeignKey,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
} from 'typeorm';
import { columnTypes, dialectOf } from '../dialect.js';

/** TOTP credentials and recovery codes. */
export class TwoFactorAuthTotp1764288000000 implements MigrationInterface {
  name = 'TwoFactorAuthTotp1764288000000';

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
    const accountFk = (table: string) =>
      new TableForeignKey({
        name: `FK_${table}_account`,
        columnNames: ['account_id'],
        referencedTableName: 'tfa_accounts',
        referencedColumnNames: ['id'],
        onDelete: 'CASCADE',
      });

    await queryRunner.createTable(
      new Table({
        name: 'tfa_totp_credentials',
        columns: [
          uuid('id', { isPrimary: true }),
          uuid('account_id', { isUnique: true }),
          str('secret_ciphertext', 255),
          str('key_id', 64),
          str('status', 8),
          { name: 'last_used_step', type: t.bigint, default: 0 },
          { name: 'created_at', type: t.bigint },
        ],
        foreignKeys: [accountFk('tfa_totp_credentials')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'tfa_recovery_codes',
        columns: [
          uuid('id', { isPrimary: true }),
          uuid('account_id'),
          str('code_hash', 64),
          { name: 'used_at', type: t.bigint, isNullable: true },
          { name: 'created_at', type: t.bigint },
        ],
        foreignKeys: [accountFk('tfa_recovery_codes')],
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
