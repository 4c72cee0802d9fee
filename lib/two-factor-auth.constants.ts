import { Account } from './accounts/account.entity.js';
import { TwoFactorAuthInit1764201600000 } from './database/migrations/init.migration.js';
import { TwoFactorAuthTotp1764288000000 } from './database/migrations/totp.migration.js';
import { TwoFactorAuthSecurity1764979200000 } from './database/migrations/security.migration.js';
import { TwoFactorAuthAlignment1765065600000 } from './database/migrations/alignment.migration.js';
import { RevocationRecord } from './revocation/revocation-record.entity.js';
import { TokenFamily } from './tokens/token-family.entity.js';
import { RecoveryCode } from './totp/recovery-code.entity.js';
import { TotpCredential } from './totp/totp-credential.entity.js';
import { LoginAttempt } from './lockout/login-attempt.entity.js';
import { SecretKey } from './secret-keys/secret-key.entity.js';
import { IssuedToken } from './tokens/issued-token.entity.js';

/** Passport name of the credentials strategy (username + password + second factor). */
export const TWO_FACTOR_STRATEGY = 'two-factor';

/** Passport name of the access-token strategy. */
export const JWT_TWO_FACTOR_STRATEGY = 'jwt-two-factor';

/** JOSE `typ` header of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** JOSE `typ` header of refresh tokens; never accepted where an access token is expected. */
export const REFRESH_TOKEN_TYP = 'rt+jwt';

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
