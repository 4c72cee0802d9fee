import { Account } from '../accounts/account.entity.js';
import { LoginAttempt } from '../lockout/login-attempt.entity.js';
import { RevocationRecord } from '../revocation/revocation-record.entity.js';
import { SecretKey } from '../secret-keys/secret-key.entity.js';
import { IssuedToken } from '../tokens/issued-token.entity.js';
import { TokenFamily } from '../tokens/token-family.entity.js';
import { RecoveryCode } from '../totp/recovery-code.entity.js';
import { TotpCredential } from '../totp/totp-credential.entity.js';
import { TwoFactorAuthAlignment1765065600000 } from './migrations/alignment.migration.js';
import { TwoFactorAuthInit1764201600000 } from './migrations/init.migration.js';
import { TwoFactorAuthSecurity1764979200000 } from './migrations/security.migration.js';
import { TwoFactorAuthTotp1764288000000 } from './migrations/totp.migration.js';
import { TwoFactorAuthOwnAccounts1767225600000 } from './migrations/own-accounts.migration.js';
import { AccountState } from '../accounts/account-state.entity.js';
import { configureAccounts } from '../accounts/account-entities.js';
import { TwoFactorAuthConfigError } from '../options/two-factor-auth.options-validation.js';
import type { MigrationInterface } from 'typeorm';
import type {
  TwoFactorAccountsOptions,
  TwoFactorEntityClass,
} from '../options/two-factor-auth.options.js';

/**
 * The module's TypeORM entities, for the application's DataSource
 * (`entities: [...TWO_FACTOR_AUTH_ENTITIES]`), or use `autoLoadEntities: true`.
 */
export const TWO_FACTOR_AUTH_ENTITIES = [
  Account,
  SecretKey,
  IssuedToken,
  TokenFamily,
  RevocationRecord,
  LoginAttempt,
  TotpCredential,
  RecoveryCode,
] as const;

/**
 * The module's migrations; they run on SQLite (better-sqlite3), PostgreSQL and MySQL/MariaDB.
 * Add them to the DataSource's `migrations` and run them (`migrationsRun: true` does it on start).
 */
export const TWO_FACTOR_AUTH_MIGRATIONS = [
  TwoFactorAuthInit1764201600000,
  TwoFactorAuthTotp1764288000000,
  TwoFactorAuthSecurity1764979200000,
  TwoFactorAuthAlignment1765065600000,
] as const;

/** The module's entities besides the accounts entity: what both stores share. */
const SHARED_ENTITIES = TWO_FACTOR_AUTH_ENTITIES.filter((entity) => entity !== Account);

/** The module's entities for the default store, or for an application's own users table. */
export function twoFactorAuthEntities(accounts?: TwoFactorAccountsOptions): TwoFactorEntityClass[] {
  return accounts ? [AccountState, ...SHARED_ENTITIES] : [...TWO_FACTOR_AUTH_ENTITIES];
}

/** The entities and migrations of the module beside an application's own users table. */
export interface TwoFactorAuthSchema {
  /** Add them to the DataSource's `entities`, beside the application's own. */
  entities: TwoFactorEntityClass[];
  /** Add them to the DataSource's `migrations`, after the one that creates the users table. */
  migrations: (new () => MigrationInterface)[];
}

/** Options of `twoFactorAuthSchema`. */
export interface TwoFactorAuthSchemaOptions {
  /**
   * The timestamp (epoch milliseconds, 13 digits) that ends the migration's name. TypeORM runs
   * migrations in timestamp order, so it must come after the migration that creates your users
   * table: write down `Date.now()` once, as a number, when you add the module, and never change
   * it (the migrations table records the name).
   * @default 1767225600000 (2026-01-01)
   */
  migrationTimestamp?: number;
}

/** When the own-users migration runs unless told otherwise. */
const OWN_ACCOUNTS_TIMESTAMP = 1767225600000;

/**
 * The module's schema for an application that keeps its own users table: the entities (no
 * `Account`; `AccountState` instead) and the migration that creates the module's tables keyed
 * on the application's account id, with foreign keys to its table. Pass the same `accounts`
 * as to `TwoFactorAuthModule.forRoot({ accounts })`; calling this in the file that builds the
 * DataSource also serves the TypeORM CLI, which never loads the Nest module.
 * @throws TwoFactorAuthConfigError naming a field of `accounts`, or a bad `migrationTimestamp`.
 * @example
 * const schema = twoFactorAuthSchema(accounts, { migrationTimestamp: 1796169600000 });
 * new DataSource({ entities: [User, ...schema.entities], migrations: [CreateUsers1790000000000, ...schema.migrations] });
 */
export function twoFactorAuthSchema(
  accounts: TwoFactorAccountsOptions,
  { migrationTimestamp = OWN_ACCOUNTS_TIMESTAMP }: TwoFactorAuthSchemaOptions = {},
): TwoFactorAuthSchema {
  if (
    !Number.isSafeInteger(migrationTimestamp) ||
    migrationTimestamp < 1e12 ||
    migrationTimestamp >= 1e13
  ) {
    throw new TwoFactorAuthConfigError(
      'migrationTimestamp',
      'must be epoch milliseconds of 13 digits, such as Date.now() written down once.',
    );
  }
  configureAccounts(accounts);
  const name = `TwoFactorAuthOwnAccounts${migrationTimestamp}`;
  const migration = class extends TwoFactorAuthOwnAccounts1767225600000 {
    override name = name;
  };
  Object.defineProperty(migration, 'name', { value: name });
  return { entities: twoFactorAuthEntities(accounts), migrations: [migration] };
}
