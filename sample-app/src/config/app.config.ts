import { applyDecorators } from '@nestjs/common';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';
import { join } from 'node:path';
import { TWO_FACTOR_AUTH_BOUNDS } from 'nestjs-rest-2fa';
import { DEFAULT_DATA_DIR } from './paths.js';
import { parseTrustProxy, type TrustProxy } from './trust-proxy.js';

/**
 * Decimal digits only: `Number()` alone would take `0x100`, `1e3`, `0b11` or ` 900 ` as
 * numbers. Anything else stays a string, which `IsInt` then refuses, naming the variable.
 */
const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === ''
    ? undefined
    : typeof value === 'string' && /^-?\d{1,15}$/.test(value)
      ? Number(value)
      : value;

/** The module's own bounds, so that a variable and the option it sets never disagree. */
const B = TWO_FACTOR_AUTH_BOUNDS;

/** An optional integer variable within `bounds`. */
const IntegerWithin = (bounds: { min: number; max: number }) =>
  applyDecorators(IsOptional(), Transform(toInt), IsInt(), Min(bounds.min), Max(bounds.max));

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

  @IntegerWithin(B.accessTokenTtl)
  ACCESS_TOKEN_TTL?: number;

  @IntegerWithin(B.refreshTokenTtl)
  REFRESH_TOKEN_TTL?: number;

  @IntegerWithin(B.lockout.maxAttempts)
  LOCKOUT_MAX_ATTEMPTS?: number;

  @IntegerWithin(B.lockout.seconds)
  LOCKOUT_SECONDS?: number;

  @IntegerWithin(B.throttle.limit)
  THROTTLE_LIMIT?: number;

  @IntegerWithin(B.throttle.ttl)
  THROTTLE_TTL?: number;

  @IntegerWithin(B.clockTolerance)
  CLOCK_TOLERANCE?: number;

  @IntegerWithin(B.revocation.syncInterval)
  REVOCATION_SYNC_INTERVAL?: number;

  @IntegerWithin(B.revocation.maxStaleness)
  REVOCATION_MAX_STALENESS?: number;

  @IntegerWithin(B.password.concurrency)
  PASSWORD_CONCURRENCY?: number;

  @IsOptional()
  @IsString()
  @MinLength(B.secretKeyPepper.min, {
    message: `SECRET_KEY_PEPPER must be at least ${B.secretKeyPepper.min} characters`,
  })
  SECRET_KEY_PEPPER?: string;

  /** Checked by `parseTrustProxy` in `loadAppConfig`. */
  @IsOptional()
  @IsString()
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

  @IntegerWithin(B.totp.enrolmentTtl)
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

  @IsOptional()
  @Matches(/^\s*[0-9a-f-]{36}\s*(,\s*[0-9a-f-]{36}\s*)*$/i, {
    message: 'ADMIN_ACCOUNT_IDS must be account ids (UUIDs) separated by commas',
  })
  @MaxLength(10_000)
  ADMIN_ACCOUNT_IDS?: string;

  @IsOptional()
  @IsIn(['true', 'false'])
  DPOP_REQUIRED?: string;

  @IsOptional()
  @IsIn(['true', 'false'])
  DPOP_NONCE?: string;

  @IsOptional()
  @IsString()
  @MaxLength(2048)
  @Matches(/^https?:\/\/[^\s?#@]+$/, {
    message:
      'DPOP_PUBLIC_URL must be the http(s) URL clients address, without query or credentials (e.g. https://api.example.com/v1)',
  })
  DPOP_PUBLIC_URL?: string;
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
  'ADMIN_ACCOUNT_IDS',
  'DPOP_REQUIRED',
  'DPOP_NONCE',
  'DPOP_PUBLIC_URL',
] as const;

type EnvironmentVariable = (typeof ENVIRONMENT_VARIABLES)[number];

/**
 * The variables whose value an error message may repeat. Every other one holds a secret (the
 * pepper, TOTP encryption keys, introspection client secrets) or may hold one (the password in
 * DATABASE_URL or REDIS_URL): an error names it and says what is wrong, never what it holds.
 * A variable added later stays hidden until it is listed here.
 */
const SHOWN_VARIABLES: ReadonlySet<string> = new Set<EnvironmentVariable>([
  'NODE_ENV',
  'ADMIN_ACCOUNT_IDS',
  'PORT',
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
  'TRUST_PROXY',
  'HTTP_ADAPTER',
  'DATA_DIR',
  'TOTP_ENABLED',
  'TOTP_ENROLMENT_TTL',
  'DPOP_REQUIRED',
  'DPOP_NONCE',
  'DPOP_PUBLIC_URL',
]);

interface Problem {
  name: string;
  problem: string;
}

/** `NAME="value"` for a variable whose value may be shown, `NAME (value not shown)` otherwise. */
function describeVariable(name: string, env: Record<string, string | undefined>): string {
  return SHOWN_VARIABLES.has(name)
    ? `${name}=${JSON.stringify(env[name])}`
    : `${name} (value not shown)`;
}

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
  /** The proxies whose `X-Forwarded-For` is believed; undefined: the socket address is the client. */
  trustProxy: TrustProxy | undefined;
  httpAdapter: 'express' | 'fastify';
  /** `true`, `false`, or undefined (on when a key is set or, in development, always). */
  totpEnabled: boolean | undefined;
  totpEncryptionKeys: { id: string; key: string }[];
  /** Seconds a started TOTP enrolment stays pending. */
  totpEnrolmentTtl: number;
  introspectionClients: { id: string; secret: string }[];
  /** Account ids whose tokens carry the `admin` role. */
  adminAccountIds: string[];
  /** The module's `dpop` option: DPOP_REQUIRED, DPOP_NONCE, DPOP_PUBLIC_URL. */
  dpop: { required: boolean; nonce: boolean; publicUrl?: string };
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
  const problems: Problem[] = errors.map((e) => ({
    name: e.property,
    problem: Object.values(e.constraints ?? {}).join('; '),
  }));
  for (const name of ['DATABASE_URL', 'REDIS_URL'] as const) {
    const value = vars[name];
    // A URL the drivers cannot parse makes them throw errors that quote it, password included.
    const unparsable = value !== undefined && !value.startsWith('sqlite:') && !URL.canParse(value);
    if (unparsable && !problems.some((p) => p.name === name)) {
      problems.push({
        name,
        problem: `${name} is not a valid URL (percent-encode @ : / # ? in the password)`,
      });
    }
  }
  let trustProxy: TrustProxy | undefined;
  if (vars.TRUST_PROXY !== undefined) {
    const parsed = parseTrustProxy(vars.TRUST_PROXY);
    if (typeof parsed === 'string') problems.push({ name: 'TRUST_PROXY', problem: parsed });
    else trustProxy = parsed;
  }
  if (problems.length > 0) {
    const lines = problems.map(
      ({ name, problem }) => `  ${describeVariable(name, env)}: ${problem}`,
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
    trustProxy,
    httpAdapter: vars.HTTP_ADAPTER === 'fastify' ? 'fastify' : 'express',
    totpEnabled: vars.TOTP_ENABLED === undefined ? undefined : vars.TOTP_ENABLED === 'true',
    totpEncryptionKeys: pairs(vars.TOTP_ENCRYPTION_KEYS).map(([id, key]) => ({ id, key })),
    totpEnrolmentTtl: vars.TOTP_ENROLMENT_TTL ?? 600,
    introspectionClients: pairs(vars.INTROSPECTION_CLIENTS).map(([id, secret]) => ({ id, secret })),
    adminAccountIds: (vars.ADMIN_ACCOUNT_IDS ?? '')
      .split(',')
      .map((id) => id.trim().toLowerCase())
      .filter((id) => id !== ''),
    dpop: {
      required: vars.DPOP_REQUIRED === 'true',
      nonce: vars.DPOP_NONCE === 'true',
      ...(vars.DPOP_PUBLIC_URL !== undefined ? { publicUrl: vars.DPOP_PUBLIC_URL } : {}),
    },
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
