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

/**
 * A bad value as an error message may show it: a number as itself, anything else by its type
 * only. Errors never quote strings or objects, which might be a secret put in the wrong option.
 */
function shown(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null ? 'null' : `a value of type ${typeof value}`;
}

function integer(option: string, value: unknown, fallback: number, { min, max }: Bounds): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TwoFactorAuthConfigError(
      option,
      `must be an integer from ${min} to ${max} (got ${shown(value)}); leave it out for the default ${fallback}.`,
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

/**
 * The range each numeric option accepts (inclusive). Exported so that an application's own
 * configuration (environment variables, say) checks the same bounds instead of restating them.
 */
export const TWO_FACTOR_AUTH_BOUNDS = Object.freeze({
  accessTokenTtl: { min: 10, max: DAY },
  refreshTokenTtl: { min: 60, max: YEAR },
  clockTolerance: { min: 0, max: 60 },
  lockout: { maxAttempts: { min: 1, max: 1000 }, seconds: { min: 1, max: DAY } },
  throttle: { limit: { min: 1, max: 1_000_000 }, ttl: { min: 1, max: DAY } },
  revocation: {
    syncInterval: { min: 50, max: 600_000 },
    maxStaleness: { min: 100, max: 3_600_000 },
    verifiedCacheSize: { min: 0, max: 10_000_000 },
  },
  prune: {
    graceSeconds: { min: 0, max: YEAR },
    intervalSeconds: { min: 0, max: 30 * DAY },
    batchSize: { min: 1, max: 100_000 },
  },
  password: {
    memoryCost: { min: 1024, max: 4_194_304 },
    timeCost: { min: 1, max: 100 },
    parallelism: { min: 1, max: 16 },
    concurrency: { min: 1, max: 64 },
    minLength: { min: 8, max: 1024 },
    maxLength: { min: 64, max: 1024 },
  },
  totp: {
    digits: { min: 6, max: 8 },
    period: { min: 15, max: 120 },
    window: { min: 0, max: 5 },
    recoveryCodes: { min: 1, max: 50 },
    enrolmentTtl: { min: 1, max: DAY },
  },
  /** Bytes of `secretKeyPepper`; characters of an introspection client secret. */
  secretKeyPepper: { min: 32 },
  introspectionSecret: { min: 32 },
  usernames: { minLength: { min: 1, max: 254 }, maxLength: { min: 3, max: 254 } },
  dpop: { proofMaxAge: { min: 5, max: 600 }, nonceLifetime: { min: 10, max: DAY } },
} as const);
const B = TWO_FACTOR_AUTH_BOUNDS;
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
  'usernames',
  'claims',
  'routes',
  'isGlobal',
  'accounts',
  'dpop',
] as const;

/**
 * Checks every option and fills in the defaults, one group at a time. Called on the sync and
 * the async path, so a bad value stops the application at start-up with the option's name in
 * the message.
 */
export function resolveTwoFactorAuthOptions(raw: unknown): ResolvedTwoFactorAuthOptions {
  const opts = plainObject('', raw) as Partial<TwoFactorAuthModuleOptions> &
    Record<string, unknown>;
  noUnknown('', opts, TOP_LEVEL);
  refuseStaticOnly(opts);
  const identity = resolveIdentity(opts);
  return {
    ...identity,
    ...resolveLifetimes(opts),
    lockout: resolveLockout(opts.lockout),
    throttle: resolveThrottle(opts.throttle),
    revocation: resolveRevocation(opts.revocation),
    prune: resolvePrune(opts.prune),
    password: resolvePassword(opts.password),
    secretKeyPepper: resolvePepper(opts.secretKeyPepper),
    redis: resolveRedis(opts.redis),
    totp:
      opts.totp === undefined || opts.totp === false
        ? false
        : resolveTotp(opts.totp, identity.issuer),
    introspection:
      opts.introspection === undefined || opts.introspection === false
        ? false
        : resolveIntrospection(opts.introspection),
    usernames: resolveUsernames(opts.usernames),
    claims: resolveClaims(opts.claims),
    dpop: resolveDpop(opts.dpop),
  };
}

type Resolved = ResolvedTwoFactorAuthOptions;
const D = TWO_FACTOR_AUTH_DEFAULTS;

/** `routes` and `isGlobal` decide which providers exist: never from an async factory. */
function refuseStaticOnly(opts: Record<string, unknown>): void {
  for (const extra of ['routes', 'isGlobal', 'accounts'] as const) {
    if (extra in opts) {
      throw new TwoFactorAuthConfigError(
        extra,
        'decides which controllers and providers exist, so it cannot come from an async factory: pass it to forRootAsync({ ..., ' +
          extra +
          ' }) itself.',
      );
    }
  }
}

function resolveIdentity(
  opts: Partial<TwoFactorAuthModuleOptions>,
): Pick<Resolved, 'issuer' | 'audience' | 'keys'> {
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
  return { issuer: opts.issuer, audience: opts.audience, keys: opts.keys };
}

function resolveLifetimes(
  opts: Partial<TwoFactorAuthModuleOptions>,
): Pick<Resolved, 'accessTokenTtl' | 'refreshTokenTtl' | 'clockTolerance'> {
  const accessTokenTtl = integer(
    'accessTokenTtl',
    opts.accessTokenTtl,
    D.accessTokenTtl,
    B.accessTokenTtl,
  );
  const refreshTokenTtl = integer(
    'refreshTokenTtl',
    opts.refreshTokenTtl,
    D.refreshTokenTtl,
    B.refreshTokenTtl,
  );
  if (refreshTokenTtl < accessTokenTtl) {
    throw new TwoFactorAuthConfigError(
      'refreshTokenTtl',
      `must not be shorter than accessTokenTtl (${accessTokenTtl}).`,
    );
  }
  const clockTolerance = integer(
    'clockTolerance',
    opts.clockTolerance,
    D.clockTolerance,
    B.clockTolerance,
  );
  return { accessTokenTtl, refreshTokenTtl, clockTolerance };
}

function resolveLockout(raw: unknown): Resolved['lockout'] {
  if (raw === false) return false;
  const l = plainObject('lockout', raw ?? {});
  noUnknown('lockout', l, ['maxAttempts', 'seconds']);
  return {
    maxAttempts: integer(
      'lockout.maxAttempts',
      l.maxAttempts,
      D.lockout.maxAttempts,
      B.lockout.maxAttempts,
    ),
    seconds: integer('lockout.seconds', l.seconds, D.lockout.seconds, B.lockout.seconds),
  };
}

function resolveThrottle(raw: unknown): Resolved['throttle'] {
  if (raw === false) return false;
  const t = plainObject('throttle', raw ?? {});
  noUnknown('throttle', t, ['limit', 'ttl']);
  return {
    limit: integer('throttle.limit', t.limit, D.throttle.limit, B.throttle.limit),
    ttl: integer('throttle.ttl', t.ttl, D.throttle.ttl, B.throttle.ttl),
  };
}

function resolveRevocation(raw: unknown): Resolved['revocation'] {
  const r = plainObject('revocation', raw ?? {});
  noUnknown('revocation', r, ['syncInterval', 'maxStaleness', 'verifiedCacheSize']);
  const syncInterval = integer(
    'revocation.syncInterval',
    r.syncInterval,
    D.revocation.syncInterval,
    B.revocation.syncInterval,
  );
  const maxStaleness = integer(
    'revocation.maxStaleness',
    r.maxStaleness,
    Math.max(D.revocation.maxStaleness, syncInterval * 3),
    B.revocation.maxStaleness,
  );
  if (maxStaleness <= syncInterval) {
    throw new TwoFactorAuthConfigError(
      'revocation.maxStaleness',
      `must be longer than revocation.syncInterval (${syncInterval} ms), or every token would be refused between two syncs.`,
    );
  }
  return {
    syncInterval,
    maxStaleness,
    verifiedCacheSize: integer(
      'revocation.verifiedCacheSize',
      r.verifiedCacheSize,
      D.revocation.verifiedCacheSize,
      B.revocation.verifiedCacheSize,
    ),
  };
}

function resolvePrune(raw: unknown): Resolved['prune'] {
  const p = plainObject('prune', raw ?? {});
  noUnknown('prune', p, ['graceSeconds', 'intervalSeconds', 'batchSize']);
  return {
    graceSeconds: integer(
      'prune.graceSeconds',
      p.graceSeconds,
      D.prune.graceSeconds,
      B.prune.graceSeconds,
    ),
    intervalSeconds: integer(
      'prune.intervalSeconds',
      p.intervalSeconds,
      D.prune.intervalSeconds,
      B.prune.intervalSeconds,
    ),
    batchSize: integer('prune.batchSize', p.batchSize, D.prune.batchSize, B.prune.batchSize),
  };
}

function resolvePassword(raw: unknown): Resolved['password'] {
  const pw = plainObject('password', raw ?? {});
  const names = Object.keys(B.password) as (keyof typeof B.password)[];
  noUnknown('password', pw, names);
  const password = Object.fromEntries(
    names.map((name) => [
      name,
      integer(`password.${name}`, pw[name], D.password[name], B.password[name]),
    ]),
  ) as Resolved['password'];
  if (password.maxLength < password.minLength) {
    throw new TwoFactorAuthConfigError(
      'password.maxLength',
      'must not be below password.minLength.',
    );
  }
  return password;
}

function resolveUsernames(raw: unknown): Resolved['usernames'] {
  const u = plainObject('usernames', raw ?? {});
  noUnknown('usernames', u, ['minLength', 'maxLength', 'validate']);
  const minLength = integer(
    'usernames.minLength',
    u.minLength,
    D.usernames.minLength,
    B.usernames.minLength,
  );
  const maxLength = integer(
    'usernames.maxLength',
    u.maxLength,
    D.usernames.maxLength,
    B.usernames.maxLength,
  );
  if (maxLength < minLength) {
    throw new TwoFactorAuthConfigError(
      'usernames.maxLength',
      'must not be below usernames.minLength.',
    );
  }
  if (u.validate !== undefined && typeof u.validate !== 'function') {
    throw new TwoFactorAuthConfigError('usernames.validate', 'must be a function.');
  }
  const validate = u.validate as Resolved['usernames']['validate'];
  return validate ? { minLength, maxLength, validate } : { minLength, maxLength };
}

function resolveClaims(raw: unknown): Resolved['claims'] {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'function') {
    throw new TwoFactorAuthConfigError('claims', 'must be a function of the account.');
  }
  return raw as Resolved['claims'];
}

function resolvePepper(raw: unknown): Buffer | undefined {
  if (raw === undefined) return undefined;
  const pepper =
    typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.isBuffer(raw) ? raw : undefined;
  if (!pepper || pepper.length < B.secretKeyPepper.min) {
    throw new TwoFactorAuthConfigError(
      'secretKeyPepper',
      `must be a string or Buffer of at least ${B.secretKeyPepper.min} bytes (e.g. \`openssl rand -base64 32\`).`,
    );
  }
  return pepper;
}

function resolveRedis(redis: TwoFactorAuthModuleOptions['redis']): Resolved['redis'] {
  if (redis === undefined) return undefined;
  // URL.canParse: ioredis throws for a URL it cannot parse, quoting it, password included.
  const isUrl = typeof redis === 'string' && /^rediss?:\/\//.test(redis) && URL.canParse(redis);
  const isClient =
    typeof redis === 'object' && redis !== null && typeof redis.duplicate === 'function';
  if (!isUrl && !isClient) {
    throw new TwoFactorAuthConfigError(
      'redis',
      "must be a redis:// or rediss:// URL (percent-encode @ : / # ? in a password) or an ioredis client, e.g. 'redis://127.0.0.1:6379'.",
    );
  }
  return redis;
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
    digits: integer('totp.digits', t.digits, d.digits, B.totp.digits),
    period: integer('totp.period', t.period, d.period, B.totp.period),
    window: integer('totp.window', t.window, d.window, B.totp.window),
    recoveryCodes: integer(
      'totp.recoveryCodes',
      t.recoveryCodes,
      d.recoveryCodes,
      B.totp.recoveryCodes,
    ),
    enrolmentTtl: integer('totp.enrolmentTtl', t.enrolmentTtl, d.enrolmentTtl, B.totp.enrolmentTtl),
  };
}

function resolveDpop(raw: unknown): Resolved['dpop'] {
  const o = plainObject('dpop', raw ?? {});
  noUnknown('dpop', o, [
    'required',
    'algorithms',
    'proofMaxAge',
    'nonce',
    'nonceLifetime',
    'publicUrl',
  ]);
  for (const flag of ['required', 'nonce'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') {
      throw new TwoFactorAuthConfigError(
        `dpop.${flag}`,
        `must be true or false (got ${shown(o[flag])}).`,
      );
    }
  }
  const known: readonly string[] = D.dpop.algorithms;
  let algorithms = D.dpop.algorithms as Resolved['dpop']['algorithms'];
  if (o.algorithms !== undefined) {
    const list = o.algorithms;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      list.some((a) => !known.includes(a as string))
    ) {
      throw new TwoFactorAuthConfigError(
        'dpop.algorithms',
        `must be a non-empty list of: ${known.join(', ')} (asymmetric algorithms only, RFC 9449 §4.2).`,
      );
    }
    algorithms = Object.freeze([...new Set(list as Resolved['dpop']['algorithms'])]);
  }
  let publicUrl: string | undefined;
  if (o.publicUrl !== undefined) {
    const url =
      typeof o.publicUrl === 'string' && URL.canParse(o.publicUrl) ? new URL(o.publicUrl) : null;
    if (
      !url ||
      (url.protocol !== 'https:' && url.protocol !== 'http:') ||
      url.username !== '' ||
      url.password !== '' ||
      url.search !== '' ||
      url.hash !== ''
    ) {
      throw new TwoFactorAuthConfigError(
        'dpop.publicUrl',
        "must be an http(s) URL without credentials, query or fragment, e.g. 'https://api.example.com/v1'.",
      );
    }
    publicUrl = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  }
  return {
    required: o.required === true,
    algorithms,
    proofMaxAge: integer('dpop.proofMaxAge', o.proofMaxAge, D.dpop.proofMaxAge, B.dpop.proofMaxAge),
    nonce: o.nonce === true,
    nonceLifetime: integer(
      'dpop.nonceLifetime',
      o.nonceLifetime,
      D.dpop.nonceLifetime,
      B.dpop.nonceLifetime,
    ),
    publicUrl,
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
    if (typeof c.secret !== 'string' || c.secret.length < B.introspectionSecret.min) {
      throw new TwoFactorAuthConfigError(
        `introspection.clients[${i}].secret`,
        `must be a string of at least ${B.introspectionSecret.min} characters.`,
      );
    }
    return { id: c.id, secret: c.secret };
  });
  return { clients };
}
