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
