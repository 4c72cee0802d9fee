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

/**
 * The module's schema for an application that keeps its own users table: the entities (no
 * `Account`; `AccountState` instead) and the migrations that create the module's tables keyed
 * on the application's account id, with foreign keys to its table. Pass the same `accounts`
 * as to `TwoFactorAuthModule.forRoot({ accounts })`; calling this in the file that builds the
 * DataSource also serves the TypeORM CLI, which never loads the Nest module.
 * @throws TwoFactorAuthConfigError naming a field of `accounts` that is wrong.
 * @example
 * const schema = twoFactorAuthSchema(accounts);
 * new DataSource({ entities: [User, ...schema.entities], migrations: [CreateUsers, ...schema.migrations] });
 */
export function twoFactorAuthSchema(accounts: TwoFactorAccountsOptions): TwoFactorAuthSchema {
  configureAccounts(accounts);
  return {
    entities: twoFactorAuthEntities(accounts),
    migrations: [TwoFactorAuthOwnAccounts1767225600000],
  };
}
