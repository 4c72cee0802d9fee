import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';
import { join } from 'node:path';
import { DEFAULT_DATA_DIR } from './paths.js';

const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : Number(value);

/**
 * Every environment variable the sample app reads, with its rule. Defaults are applied in
 * `loadAppConfig`; `.env.example` lists them all.
 */
class EnvironmentVariables {
  @IsOptional()
  @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT?: number;

  @IsOptional()
  @IsString()
  @Matches(/^(sqlite:.+|postgres(ql)?:\/\/.+|mysql:\/\/.+|mariadb:\/\/.+)$/, {
    message: 'DATABASE_URL must be sqlite:<path>, postgres://…, mysql://… or mariadb://…',
  })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  JWT_KEYS_FILE?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  JWT_ISSUER?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  JWT_AUDIENCE?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(86400)
  ACCESS_TOKEN_TTL?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(31536000)
  REFRESH_TOKEN_TTL?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  LOCKOUT_MAX_ATTEMPTS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  LOCKOUT_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000000)
  THROTTLE_LIMIT?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  THROTTLE_TTL?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(60)
  CLOCK_TOLERANCE?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(50)
  @Max(600000)
  REVOCATION_SYNC_INTERVAL?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(3600000)
  REVOCATION_MAX_STALENESS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(64)
  PASSWORD_CONCURRENCY?: number;

  @IsOptional()
  @IsString()
  @MinLength(32, { message: 'SECRET_KEY_PEPPER must be at least 32 characters' })
  SECRET_KEY_PEPPER?: string;

  @IsOptional()
  @IsString()
  @Matches(/^(true|false|\d{1,2}|[\d.:a-fA-F/, ]+|loopback|linklocal|uniquelocal)$/, {
    message: 'TRUST_PROXY must be true, false, a hop count, or addresses/subnets',
  })
  TRUST_PROXY?: string;

  @IsOptional()
  @IsIn(['express', 'fastify'])
  HTTP_ADAPTER?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  DATA_DIR?: string;

  @IsOptional()
  @IsIn(['true', 'false'])
  TOTP_ENABLED?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  TOTP_ENROLMENT_TTL?: number;

  @IsOptional()
  @IsString()
  @Matches(
    /^[A-Za-z0-9._-]{1,64}:[A-Za-z0-9+/_=-]{43,44}(,[A-Za-z0-9._-]{1,64}:[A-Za-z0-9+/_=-]{43,44})*$/,
    {
      message:
        'TOTP_ENCRYPTION_KEYS must be id:base64key[,id:base64key…] with 32-byte keys (openssl rand -base64 32)',
    },
  )
  TOTP_ENCRYPTION_KEYS?: string;

  @IsOptional()
  @IsString()
  @Matches(/^[^:,\s]+:[^,\s]{32,}(,[^:,\s]+:[^,\s]{32,})*$/, {
    message:
      'INTROSPECTION_CLIENTS must be id:secret[,id:secret…] with secrets of at least 32 characters',
  })
  INTROSPECTION_CLIENTS?: string;
}

/** The names of every variable the sample app reads. */
export const ENVIRONMENT_VARIABLES = [
  'NODE_ENV',
  'PORT',
  'DATABASE_URL',
  'REDIS_URL',
  'JWT_KEYS_FILE',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'ACCESS_TOKEN_TTL',
  'REFRESH_TOKEN_TTL',
  'LOCKOUT_MAX_ATTEMPTS',
  'LOCKOUT_SECONDS',
  'THROTTLE_LIMIT',
  'THROTTLE_TTL',
  'CLOCK_TOLERANCE',
  'REVOCATION_SYNC_INTERVAL',
  'REVOCATION_MAX_STALENESS',
  'PASSWORD_CONCURRENCY',
  'SECRET_KEY_PEPPER',
  'TRUST_PROXY',
  'HTTP_ADAPTER',
  'DATA_DIR',
  'TOTP_ENABLED',
  'TOTP_ENROLMENT_TTL',
  'TOTP_ENCRYPTION_KEYS',
  'INTROSPECTION_CLIENTS',
] as const;

/** The sample app's validated configuration. */
export interface AppConfig {
  production: boolean;
  port: number;
  database: { kind: 'sqlite'; path: string } | { kind: 'postgres' | 'mysql'; url: string };
  redisUrl: string | undefined;
  keysFile: string | undefined;
  dataDir: string;
  issuer: string;
  audience: string | undefined;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  clockTolerance: number;
  /** Module `revocation` and `password.concurrency`; undefined keeps the module's default. */
  revocation: { syncInterval?: number; maxStaleness?: number };
  passwordConcurrency: number | undefined;
  lockout: { maxAttempts: number; seconds: number };
  throttle: { limit: number; ttl: number };
  secretKeyPepper: string | undefined;
  trustProxy: string | undefined;
  httpAdapter: 'express' | 'fastify';
  /** `true`, `false`, or undefined (on when a key is set or, in development, always). */
  totpEnabled: boolean | undefined;
  totpEncryptionKeys: { id: string; key: string }[];
  /** Seconds a started TOTP enrolment stays pending. */
  totpEnrolmentTtl: number;
  introspectionClients: { id: string; secret: string }[];
}

/** Thrown when an environment variable is malformed; the message names it. */
export class ConfigurationError extends Error {}

/**
 * Reads and validates the environment. A malformed value stops the start-up with a message
 * naming the variable.
 */
export function loadAppConfig(env: Record<string, string | undefined>): AppConfig {
  const defined = Object.fromEntries(
    ENVIRONMENT_VARIABLES.filter((name) => env[name] !== undefined && env[name] !== '').map(
      (name) => [name, env[name]],
    ),
  );
  const vars = plainToInstance(EnvironmentVariables, defined);
  const errors = validateSync(vars, { skipMissingProperties: false, forbidUnknownValues: false });
  if (errors.length > 0) {
    const lines = errors.map(
      (e) =>
        `  ${e.property}=${JSON.stringify(env[e.property])}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new ConfigurationError(`Invalid environment:\n${lines.join('\n')}`);
  }
  const dataDir = vars.DATA_DIR ?? DEFAULT_DATA_DIR;
  const url = vars.DATABASE_URL;
  let database: AppConfig['database'];
  if (!url) database = { kind: 'sqlite', path: join(dataDir, 'sample.sqlite') };
  else if (url.startsWith('sqlite:'))
    database = { kind: 'sqlite', path: url.slice('sqlite:'.length) };
  else if (url.startsWith('postgres')) database = { kind: 'postgres', url };
  else database = { kind: 'mysql', url: url.replace(/^mariadb:/, 'mysql:') };

  return {
    production: vars.NODE_ENV === 'production',
    port: vars.PORT ?? 3000,
    database,
    redisUrl: vars.REDIS_URL,
    keysFile: vars.JWT_KEYS_FILE,
    dataDir,
    issuer: vars.JWT_ISSUER ?? 'nestjs-rest-2fa-sample',
    audience: vars.JWT_AUDIENCE,
    accessTokenTtl: vars.ACCESS_TOKEN_TTL ?? 900,
    refreshTokenTtl: vars.REFRESH_TOKEN_TTL ?? 604800,
    clockTolerance: vars.CLOCK_TOLERANCE ?? 5,
    revocation: {
      ...(vars.REVOCATION_SYNC_INTERVAL !== undefined
        ? { syncInterval: vars.REVOCATION_SYNC_INTERVAL }
        : {}),
      ...(vars.REVOCATION_MAX_STALENESS !== undefined
        ? { maxStaleness: vars.REVOCATION_MAX_STALENESS }
        : {}),
    },
    passwordConcurrency: vars.PASSWORD_CONCURRENCY,
    lockout: { maxAttempts: vars.LOCKOUT_MAX_ATTEMPTS ?? 5, seconds: vars.LOCKOUT_SECONDS ?? 900 },
    throttle: { limit: vars.THROTTLE_LIMIT ?? 20, ttl: vars.THROTTLE_TTL ?? 60 },
    secretKeyPepper: vars.SECRET_KEY_PEPPER,
    trustProxy: vars.TRUST_PROXY,
    httpAdapter: vars.HTTP_ADAPTER === 'fastify' ? 'fastify' : 'express',
    totpEnabled: vars.TOTP_ENABLED === undefined ? undefined : vars.TOTP_ENABLED === 'true',
    totpEncryptionKeys: pairs(vars.TOTP_ENCRYPTION_KEYS).map(([id, key]) => ({ id, key })),
    totpEnrolmentTtl: vars.TOTP_ENROLMENT_TTL ?? 600,
    introspectionClients: pairs(vars.INTROSPECTION_CLIENTS).map(([id, secret]) => ({ id, secret })),
  };
}

/** `a:b,c:d` as `[['a','b'],['c','d']]`. */
function pairs(value: string | undefined): [string, string][] {
  if (!value) return [];
  return value.split(',').map((pair) => {
    const colon = pair.indexOf(':');
    return [pair.slice(0, colon), pair.slice(colon + 1)];
  });
}
