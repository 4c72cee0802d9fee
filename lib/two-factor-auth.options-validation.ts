import {
  TWO_FACTOR_AUTH_DEFAULTS,
  type ResolvedTotpOptions,
  type ResolvedTwoFactorAuthOptions,
  type TwoFactorAuthModuleOptions,
  type TwoFactorIntrospectionClient,
} from './two-factor-auth.options.js';

/** Thrown at start-up when an option is missing or malformed; the message names it. */
export class TwoFactorAuthConfigError extends Error {
  constructor(
    readonly option: string,
    problem: string,
  ) {
    super(`nestjs-rest-2fa: option "${option}" ${problem}`);
    this.name = 'TwoFactorAuthConfigError';
  }
}

type Bounds = { min: number; max: number };

function integer(option: string, value: unknown, fallback: number, { min, max }: Bounds): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TwoFactorAuthConfigError(
      option,
      `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)}); leave it out for the default ${fallback}.`,
    );
  }
  return value;
}

function plainObject(option: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TwoFactorAuthConfigError(option, 'must be an object (or left out for the defaults).');
  }
  return value as Record<string, unknown>;
}

function noUnknown(option: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new TwoFactorAuthConfigError(
        `${option}${option ? '.' : ''}${key}`,
        `is not a known option; known ones are: ${known.join(', ')}.`,
      );
    }
  }
}

const DAY = 86400;
const YEAR = 365 * DAY;
const TOP_LEVEL = [
  'issuer',
  'audience',
  'keys',
  'accessTokenTtl',
  'refreshTokenTtl',
  'clockTolerance',
  'lockout',
  'throttle',
  'revocation',
  'prune',
  'password',
  'secretKeyPepper',
  'redis',
  'totp',
  'introspection',
  'routes',
  'isGlobal',
] as const;

/**
 * Checks every option and fills in the defaults. Called on the sync and the async path,
 * so a bad value stops the application at start-up with the option's name in the message.
 */
export function resolveTwoFactorAuthOptions(raw: unknown): ResolvedTwoFactorAuthOptions {
  const opts = plainObject('', raw) as Partial<TwoFactorAuthModuleOptions> &
    Record<string, unknown>;
  noUnknown('', opts, TOP_LEVEL);
  for (const extra of ['routes', 'isGlobal'] as const) {
    if (extra in opts) {
      throw new TwoFactorAuthConfigError(
        extra,
        'decides which controllers and providers exist, so it cannot come from an async factory: pass it to forRootAsync({ ..., ' +
          extra +
          ' }) itself.',
      );
    }
  }
  const d = TWO_FACTOR_AUTH_DEFAULTS;

  if (typeof opts.issuer !== 'string' || opts.issuer.trim() === '' || opts.issuer.length > 512) {
    throw new TwoFactorAuthConfigError(
      'issuer',
      "is required: a non-empty string used as the tokens' iss, e.g. 'https://api.example.com'.",
    );
  }
  if (
    opts.audience !== undefined &&
    (typeof opts.audience !== 'string' || opts.audience === '' || opts.audience.length > 512)
  ) {
    throw new TwoFactorAuthConfigError('audience', 'must be a non-empty string or left out.');
  }
  if (!Array.isArray(opts.keys) || opts.keys.length === 0) {
    throw new TwoFactorAuthConfigError(
      'keys',
      'is required: an array of JWKs with kid and alg (keys[0] signs). Generate one with `npx nestjs-rest-2fa keys generate --alg ES256`.',
    );
  }

  const accessTokenTtl = integer('accessTokenTtl', opts.accessTokenTtl, d.accessTokenTtl, {
    min: 10,
    max: DAY,
  });
  const refreshTokenTtl = integer('refreshTokenTtl', opts.refreshTokenTtl, d.refreshTokenTtl, {
    min: 60,
    max: YEAR,
  });
  if (refreshTokenTtl < accessTokenTtl) {
    throw new TwoFactorAuthConfigError(
      'refreshTokenTtl',
      `must not be shorter than accessTokenTtl (${accessTokenTtl}).`,
    );
  }
  const clockTolerance = integer('clockTolerance', opts.clockTolerance, d.clockTolerance, {
    min: 0,
    max: 60,
  });

  let lockout: ResolvedTwoFactorAuthOptions['lockout'] = false;
  if (opts.lockout !== false) {
    const l = plainObject('lockout', opts.lockout ?? {});
    noUnknown('lockout', l, ['maxAttempts', 'seconds']);
    lockout = {
      maxAttempts: integer('lockout.maxAttempts', l.maxAttempts, d.lockout.maxAttempts, {
        min: 1,
        max: 1000,
      }),
      seconds: integer('lockout.seconds', l.seconds, d.lockout.seconds, { min: 1, max: DAY }),
    };
  }

  let throttle: ResolvedTwoFactorAuthOptions['throttle'] = false;
  if (opts.throttle !== false) {
    const t = plainObject('throttle', opts.throttle ?? {});
    noUnknown('throttle', t, ['limit', 'ttl']);
    throttle = {
      limit: integer('throttle.limit', t.limit, d.throttle.limit, { min: 1, max: 1_000_000 }),
      ttl: integer('throttle.ttl', t.ttl, d.throttle.ttl, { min: 1, max: DAY }),
    };
  }

  const r = plainObject('revocation', opts.revocation ?? {});
  noUnknown('revocation', r, ['syncInterval', 'maxStaleness', 'verifiedCacheSize']);
  const syncInterval = integer(
    'revocation.syncInterval',
    r.syncInterval,
    d.revocation.syncInterval,
    {
      min: 50,
      max: 600_000,
    },
  );
  const maxStaleness = integer(
    'revocation.maxStaleness',
    r.maxStaleness,
    Math.max(d.revocation.maxStaleness, syncInterval * 3),
    { min: 100, max: 3_600_000 },
  );
  if (maxStaleness <= syncInterval) {
    throw new TwoFactorAuthConfigError(
      'revocation.maxStaleness',
      `must be longer than revocation.syncInterval (${syncInterval} ms), or every token would be refused between two syncs.`,
    );
  }
  const revocation = {
    syncInterval,
    maxStaleness,
    verifiedCacheSize: integer(
      'revocation.verifiedCacheSize',
      r.verifiedCacheSize,
      d.revocation.verifiedCacheSize,
      { min: 0, max: 10_000_000 },
    ),
  };

  const p = plainObject('prune', opts.prune ?? {});
  noUnknown('prune', p, ['graceSeconds', 'intervalSeconds', 'batchSize']);
  const prune = {
    graceSeconds: integer('prune.graceSeconds', p.graceSeconds, d.prune.graceSeconds, {
      min: 0,
      max: YEAR,
    }),
    intervalSeconds: integer('prune.intervalSeconds', p.intervalSeconds, d.prune.intervalSeconds, {
      min: 0,
      max: 30 * DAY,
    }),
    batchSize: integer('prune.batchSize', p.batchSize, d.prune.batchSize, { min: 1, max: 100_000 }),
  };

  const pw = plainObject('password', opts.password ?? {});
  noUnknown('password', pw, [
    'memoryCost',
    'timeCost',
    'parallelism',
    'concurrency',
    'minLength',
    'maxLength',
  ]);
  const password = {
    memoryCost: integer('password.memoryCost', pw.memoryCost, d.password.memoryCost, {
      min: 1024,
      max: 4_194_304,
    }),
    timeCost: integer('password.timeCost', pw.timeCost, d.password.timeCost, { min: 1, max: 100 }),
    parallelism: integer('password.parallelism', pw.parallelism, d.password.parallelism, {
      min: 1,
      max: 16,
    }),
    concurrency: integer('password.concurrency', pw.concurrency, d.password.concurrency, {
      min: 1,
      max: 64,
    }),
    minLength: integer('password.minLength', pw.minLength, d.password.minLength, {
      min: 8,
      max: 1024,
    }),
    maxLength: integer('password.maxLength', pw.maxLength, d.password.maxLength, {
      min: 64,
      max: 1024,
    }),
  };
  if (password.maxLength < password.minLength) {
    throw new TwoFactorAuthConfigError(
      'password.maxLength',
      'must not be below password.minLength.',
    );
  }

  let secretKeyPepper: Buffer | undefined;
  if (opts.secretKeyPepper !== undefined) {
    secretKeyPepper =
      typeof opts.secretKeyPepper === 'string'
        ? Buffer.from(opts.secretKeyPepper, 'utf8')
        : Buffer.isBuffer(opts.secretKeyPepper)
          ? opts.secretKeyPepper
          : undefined;
    if (!secretKeyPepper || secretKeyPepper.length < 32) {
      throw new TwoFactorAuthConfigError(
        'secretKeyPepper',
        'must be a string or Buffer of at least 32 bytes (e.g. `openssl rand -base64 32`).',
      );
    }
  }

  const redis = opts.redis;
  if (redis !== undefined) {
    const isUrl = typeof redis === 'string' && /^rediss?:\/\//.test(redis);
    const isClient =
      typeof redis === 'object' && redis !== null && typeof redis.duplicate === 'function';
    if (!isUrl && !isClient) {
      throw new TwoFactorAuthConfigError(
        'redis',
        "must be a redis:// or rediss:// URL or an ioredis client, e.g. 'redis://127.0.0.1:6379'.",
      );
    }
  }

  const totp =
    opts.totp === undefined || opts.totp === false ? false : resolveTotp(opts.totp, opts.issuer);
  const introspection =
    opts.introspection === undefined || opts.introspection === false
      ? false
      : resolveIntrospection(opts.introspection);

  return {
    totp,
    introspection,
    issuer: opts.issuer,
    audience: opts.audience,
    keys: opts.keys,
    accessTokenTtl,
    refreshTokenTtl,
    clockTolerance,
    lockout,
    throttle,
    revocation,
    prune,
    password,
    secretKeyPepper,
    redis,
  };
}

function resolveTotp(raw: unknown, defaultIssuer: string): ResolvedTotpOptions {
  const t = plainObject('totp', raw);
  noUnknown('totp', t, [
    'encryptionKeys',
    'issuer',
    'algorithm',
    'digits',
    'period',
    'window',
    'recoveryCodes',
    'enrolmentTtl',
  ]);
  const d = TWO_FACTOR_AUTH_DEFAULTS.totp;
  if (!Array.isArray(t.encryptionKeys) || t.encryptionKeys.length === 0) {
    throw new TwoFactorAuthConfigError(
      'totp.encryptionKeys',
      'is required when TOTP is on: [{ id, key }] with a 32-byte key in base64 (`openssl rand -base64 32`), so TOTP secrets are encrypted at rest.',
    );
  }
  const seen = new Set<string>();
  const encryptionKeys = t.encryptionKeys.map((entry: unknown, i: number) => {
    const k = plainObject(`totp.encryptionKeys[${i}]`, entry);
    if (typeof k.id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(k.id) || seen.has(k.id)) {
      throw new TwoFactorAuthConfigError(
        `totp.encryptionKeys[${i}].id`,
        'must be a unique id of 1 to 64 letters, digits, ".", "_" or "-".',
      );
    }
    seen.add(k.id);
    const key =
      typeof k.key === 'string'
        ? Buffer.from(k.key.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
        : undefined;
    if (!key || key.length !== 32) {
      throw new TwoFactorAuthConfigError(
        `totp.encryptionKeys[${i}].key`,
        'must be exactly 32 bytes, base64 encoded (`openssl rand -base64 32`).',
      );
    }
    return { id: k.id, key };
  });
  if (
    t.issuer !== undefined &&
    (typeof t.issuer !== 'string' || t.issuer === '' || t.issuer.includes(':'))
  ) {
    throw new TwoFactorAuthConfigError('totp.issuer', 'must be a non-empty string without ":".');
  }
  const algorithm = t.algorithm ?? d.algorithm;
  if (algorithm !== 'SHA1' && algorithm !== 'SHA256' && algorithm !== 'SHA512') {
    throw new TwoFactorAuthConfigError('totp.algorithm', "must be 'SHA1', 'SHA256' or 'SHA512'.");
  }
  return {
    encryptionKeys,
    issuer: (t.issuer as string | undefined) ?? defaultIssuer,
    algorithm,
    digits: integer('totp.digits', t.digits, d.digits, { min: 6, max: 8 }),
    period: integer('totp.period', t.period, d.period, { min: 15, max: 120 }),
    window: integer('totp.window', t.window, d.window, { min: 0, max: 5 }),
    recoveryCodes: integer('totp.recoveryCodes', t.recoveryCodes, d.recoveryCodes, {
      min: 1,
      max: 50,
    }),
    enrolmentTtl: integer('totp.enrolmentTtl', t.enrolmentTtl, d.enrolmentTtl, {
      min: 1,
      max: 86400,
    }),
  };
}

function resolveIntrospection(raw: unknown): { clients: TwoFactorIntrospectionClient[] } {
  const o = plainObject('introspection', raw);
  noUnknown('introspection', o, ['clients']);
  if (!Array.isArray(o.clients) || o.clients.length === 0) {
    throw new TwoFactorAuthConfigError(
      'introspection.clients',
      'must list at least one { id, secret } (or set introspection: false).',
    );
  }
  const clients = o.clients.map((entry: unknown, i: number) => {
    const c = plainObject(`introspection.clients[${i}]`, entry);
    if (typeof c.id !== 'string' || c.id === '' || c.id.includes(':')) {
      throw new TwoFactorAuthConfigError(
        `introspection.clients[${i}].id`,
        'must be a non-empty string without ":".',
      );
    }
    if (typeof c.secret !== 'string' || c.secret.length < 32) {
      throw new TwoFactorAuthConfigError(
        `introspection.clients[${i}].secret`,
        'must be a string of at least 32 characters.',
      );
    }
    return { id: c.id, secret: c.secret };
  });
  return { clients };
}
