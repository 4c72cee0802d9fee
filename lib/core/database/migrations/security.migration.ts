import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { accountForeignKey, columnsFor } from '../dialect.js';

/**
 * Security round 2: token families (so a logout or a revoke-all wins any race with a refresh),
 * an account token epoch (counted by the database, no clock), the revocation log the instances
 * poll with a database-clock cursor, and the in-flight counter of the lockout.
 */
export class TwoFactorAuthSecurity1764979200000 implements MigrationInterface {
  name = 'TwoFactorAuthSecurity1764979200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = columnsFor(queryRunner);
    await queryRunner.addColumn(
      'tfa_accounts',
      new TableColumn(c.int('token_epoch', { default: 0 })),
    );
    await queryRunner.addColumns('tfa_login_attempts', [
      new TableColumn(c.int('in_flight', { default: 0 })),
      new TableColumn(c.bigint('in_flight_since', { default: 0 })),
    ]);
    await queryRunner.createTable(
      new Table({
        name: 'tfa_token_families',
        columns: [
          c.varchar('id', 36, { isPrimary: true }),
          c.uuid('account_id'),
          c.int('epoch', { default: 0 }),
          c.bigint('revoked_at', { isNullable: true }),
          c.bigint('created_at'),
        ],
        foreignKeys: [accountForeignKey('tfa_token_families')],
        indices: [
          new TableIndex({ name: 'IDX_tfa_token_families_account', columnNames: ['account_id'] }),
        ],
      }),
    );
    // Families of tokens issued before this migration, so that they refresh as before.
    await queryRunner.query(
      `INSERT INTO tfa_token_families (id, account_id, epoch, revoked_at, created_at)
       SELECT family_id, account_id, 0, NULL, MIN(created_at)
       FROM tfa_issued_tokens GROUP BY family_id, account_id`,
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
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('tfa_revocations', true);
    await queryRunner.dropTable('tfa_token_families', true);
    await queryRunner.dropColumn('tfa_login_attempts', 'in_flight_since');
    await queryRunner.dropColumn('tfa_login_attempts', 'in_flight');
    await queryRunner.dropColumn('tfa_accounts', 'token_epoch');
  }
}
