import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';
import { accountForeignKey, dialectOf } from '../dialect.js';

/** Tables whose `account_id` references `tfa_accounts.id`. */
const ACCOUNT_CHILDREN = [
  'tfa_secret_keys',
  'tfa_issued_tokens',
  'tfa_totp_credentials',
  'tfa_recovery_codes',
  'tfa_token_families',
];

/** The id columns the earlier migrations made native `uuid` on PostgreSQL. */
const UUID_COLUMNS: [table: string, column: string][] = [
  ['tfa_accounts', 'id'],
  ['tfa_secret_keys', 'id'],
  ['tfa_secret_keys', 'account_id'],
  ['tfa_issued_tokens', 'account_id'],
  ['tfa_totp_credentials', 'id'],
  ['tfa_totp_credentials', 'account_id'],
  ['tfa_recovery_codes', 'id'],
  ['tfa_recovery_codes', 'account_id'],
  ['tfa_token_families', 'account_id'],
];

/**
 * Makes the schema exactly what the entities declare, so that `synchronize` or
 * `migration:generate` in an application finds nothing of the module's to change (before, it
 * would have dropped the index the revocation poll reads, and rebuilt or retyped tables):
 * - PostgreSQL: ids become `varchar(36)`, as on the other databases. An entity has one column
 *   type for every database, and TypeORM maps `uuid` to `varchar(255)` on MySQL and to an
 *   unsized `varchar` on SQLite; the values (lower-case UUID text) do not change.
 * - SQLite: `disabled` gets the default the entity declares (`0`, not the keyword `false`);
 *   TypeORM rebuilds the table for that, with foreign keys off during migrations.
 * - MySQL/MariaDB: the unique index on the one-to-one `account_id` columns takes the name
 *   TypeORM gives a one-to-one relation's index, and the foreign keys say `ON UPDATE NO ACTION`
 *   as the entities do (left unsaid, MySQL records RESTRICT: the same behaviour, another word).
 */
export class TwoFactorAuthAlignment1765065600000 implements MigrationInterface {
  name = 'TwoFactorAuthAlignment1765065600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    switch (dialectOf(queryRunner)) {
      case 'postgres':
        await this.retypeIds(queryRunner, 'varchar(36)', '::text');
        break;
      case 'sqlite':
        await this.setDisabledDefault(queryRunner, '0');
        break;
      case 'mysql':
        await this.renameOneToOneIndexes(queryRunner, 'UQ_', 'REL_');
        await this.recreateForeignKeys(queryRunner, 'NO ACTION');
        break;
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    switch (dialectOf(queryRunner)) {
      case 'postgres':
        await this.retypeIds(queryRunner, 'uuid', '::uuid');
        break;
      case 'sqlite':
        await this.setDisabledDefault(queryRunner, 'false');
        break;
      case 'mysql':
        await this.recreateForeignKeys(queryRunner, undefined);
        await this.renameOneToOneIndexes(queryRunner, 'REL_', 'UQ_');
        break;
    }
  }

  /** The foreign keys must go while both of their ends change type, then come back. */
  private async retypeIds(queryRunner: QueryRunner, type: string, cast: string): Promise<void> {
    for (const table of ACCOUNT_CHILDREN) {
      await queryRunner.dropForeignKey(table, accountForeignKey(table).name!);
    }
    for (const [table, column] of UUID_COLUMNS) {
      await queryRunner.query(
        `ALTER TABLE "${table}" ALTER COLUMN "${column}" TYPE ${type} USING "${column}"${cast}`,
      );
    }
    for (const table of ACCOUNT_CHILDREN) {
      await queryRunner.createForeignKey(table, accountForeignKey(table));
    }
  }

  private async recreateForeignKeys(
    queryRunner: QueryRunner,
    onUpdate: 'NO ACTION' | undefined,
  ): Promise<void> {
    for (const table of ACCOUNT_CHILDREN) {
      const foreignKey = accountForeignKey(table);
      foreignKey.onUpdate = onUpdate;
      await queryRunner.dropForeignKey(table, foreignKey.name!);
      await queryRunner.createForeignKey(table, foreignKey);
    }
  }

  private async setDisabledDefault(queryRunner: QueryRunner, value: string): Promise<void> {
    await queryRunner.changeColumn(
      'tfa_accounts',
      'disabled',
      new TableColumn({ name: 'disabled', type: 'boolean', isNullable: false, default: value }),
    );
  }

  private async renameOneToOneIndexes(
    queryRunner: QueryRunner,
    from: string,
    to: string,
  ): Promise<void> {
    // TypeORM's names: UQ_ + 27 hex characters for the unique column, REL_ + 26 for the relation.
    for (const [table, hash] of [
      ['tfa_secret_keys', 'ecf1af96ed29168b5a43226a67c'],
      ['tfa_totp_credentials', '064366054c801424b1c70e71f65'],
    ]) {
      const name = (prefix: string) =>
        prefix === 'UQ_' ? `UQ_${hash}` : `REL_${hash.slice(0, 26)}`;
      await queryRunner.query(
        `ALTER TABLE \`${table}\` RENAME INDEX \`${name(from)}\` TO \`${name(to)}\``,
      );
    }
  }
}
