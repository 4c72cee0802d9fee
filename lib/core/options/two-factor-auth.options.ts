import { availableParallelism } from 'node:os';

/**
 * What the module uses of an `ioredis` client (`new Redis(…)`), declared here so that the
 * published types do not name `ioredis`: an optional peer, absent from apps without Redis.
 */
export interface TwoFactorRedisClient {
  /** ioredis's connection state (`'ready'`, `'wait'`, `'reconnecting'`, …). */
  readonly status: string;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  /** A new connection with the same settings, `options` overriding some (ioredis options). */
  duplicate(options?: object): TwoFactorRedisClient;
  on(event: string, listener: (...args: never[]) => void): unknown;
  disconnect(): void;
}

/**
 * A JSON Web Key (RFC 7517) as the key ring accepts it: a private key (RSA, EC, OKP)
 * or a secret (`oct`), always with `kid` and `alg`. Public-only keys are accepted too:
 * they verify tokens but cannot sign, which suits a retired signing key.
 */
export interface TwoFactorJwk {
  /** Key id, written to the `kid` header of every token the key signs. Unique in the ring. */
  kid: string;
  /** The one algorithm this key is used with. The token's own `alg` must match it. */
  alg: TwoFactorJwsAlgorithm;
  /** Key type: `oct` (HMAC), `RSA`, `EC` or `OKP` (Ed25519/Ed448). */
  kty: string;
  /** Other JWK members (`k`, `n`, `e`, `d`, `crv`, `x`, `y`, …). */
  [member: string]: unknown;
}

/** Signature algorithms the key ring supports. `none` is never accepted. */
export type TwoFactorJwsAlgorithm =
  | 'HS256'
  | 'HS384'
  | 'HS512'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA';

/** Per-account lockout after repeated failed logins. */
export interface TwoFactorLockoutOptions {
  /**
   * Failed logins (any wrong or missing factor) before the username locks.
   * @default 5
   */
  maxAttempts?: number;
  /**
   * How long a lock lasts, in seconds; failures add up until this long passes without one.
   * A lock is never extended while it holds, so an attacker cannot keep a victim locked out
   * for longer than this per burst.
   * @default 900
   */
  seconds?: number;
}

/** Per-client throttling of the module's token routes (`/auth/token`, `/auth/refresh`, …). */
export interface TwoFactorThrottleOptions {
  /**
   * Requests allowed per client per window.
   * @default 20
   */
  limit?: number;
  /**
   * Window length in seconds.
   * @default 60
   */
  ttl?: number;
}

/** Where the module mounts its HTTP routes. */
export interface TwoFactorRoutesOptions {
  /**
   * Path prefix of the token routes (`<prefix>/token`, `<prefix>/refresh`, `<prefix>/revoke`).
   * @default 'auth'
   */
  prefix?: string;
  /**
   * Serve the public JWK Set at `/.well-known/jwks.json`.
   * @default true
   */
  jwks?: boolean;
}

/** The in-memory revocation view the guard consults instead of the database. */
export interface TwoFactorRevocationOptions {
  /**
   * How often (ms) each instance pulls new revocations from the database. With Redis,
   * revocations also arrive at once by pub/sub; this poll is the safety net.
   * @default 500
   */
  syncInterval?: number;
  /**
   * The oldest (ms) the view may be before the guard refuses every token with `503`
   * rather than accept one that might have been revoked (fail closed).
   * @default 5000
   */
  maxStaleness?: number;
  /**
   * How many verified tokens are remembered so a repeated token is not re-verified.
   * Revocation and expiry are still checked on every request.
   * @default 10000
   */
  verifiedCacheSize?: number;
}

/**
 * The signature algorithms a DPoP proof may use (asymmetric only: RFC 9449 §4.2). `Ed25519` is
 * the fully-specified name of RFC 9864, which current clients (the `dpop` package) send.
 */
export type TwoFactorDpopAlgorithm =
  Exclude<TwoFactorJwsAlgorithm, 'HS256' | 'HS384' | 'HS512'> | 'Ed25519';

/**
 * DPoP (RFC 9449): access and refresh tokens bound to a key the client holds. A client opts in
 * per login by sending a `DPoP` proof to the token route; its tokens then work only with a fresh
 * proof signed by that key. Clients that send no proof keep Bearer tokens unless `required`.
 */
export interface TwoFactorDpopOptions {
  /**
   * Refuse token requests without a DPoP proof, and unbound (Bearer) access tokens on guarded
   * routes.
   * @default false
   */
  required?: boolean;
  /**
   * The proof algorithms accepted, announced in `WWW-Authenticate: DPoP algs="…"`.
   * @default ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512']
   */
  algorithms?: TwoFactorDpopAlgorithm[];
  /**
   * How old (seconds) a proof's `iat` may be; it may lie at most `clockTolerance` in the
   * future. Each proof's `jti` is remembered this long (plus the tolerance) to refuse replays.
   * @default 60
   */
  proofMaxAge?: number;
  /**
   * Require server-issued nonces in proofs (RFC 9449 §8): a proof without a current nonce is
   * answered with `use_dpop_nonce` and a fresh `DPoP-Nonce` header. Nonces are derived from
   * the signing key, so every instance with the same keys accepts them.
   * @default false
   */
  nonce?: boolean;
  /**
   * How long (seconds) a nonce is accepted when `nonce` is on.
   * @default 300
   */
  nonceLifetime?: number;
  /**
   * The URL clients address the application at (scheme, host, optional path prefix), when a
   * proxy in front rewrites it: `htu` is compared with this URL followed by the request's path.
   * Without it, `htu` is compared with the request's own scheme, `Host` and path (behind a
   * proxy the application trusts, its `X-Forwarded-Proto` and `X-Forwarded-Host`).
   * @default undefined
   * @example 'https://api.example.com/v1'
   */
  publicUrl?: string;
}

/** Housekeeping of `IssuedToken` rows. */
export interface TwoFactorPruneOptions {
  /**
   * Rows whose token expired longer ago than this (seconds) are deleted by `pruneExpired()`.
   * @default 86400
   */
  graceSeconds?: number;
  /**
   * Run `pruneExpired()` every this many seconds; `0` turns the timer off.
   * @default 3600
   */
  intervalSeconds?: number;
  /**
   * Rows deleted per statement, so pruning never holds long locks.
   * @default 1000
   */
  batchSize?: number;
}

/** argon2id cost parameters for password hashes (OWASP Password Storage Cheat Sheet). */
export interface TwoFactorPasswordOptions {
  /**
   * Memory cost in KiB.
   * @default 19456
   */
  memoryCost?: number;
  /**
   * Iterations.
   * @default 2
   */
  timeCost?: number;
  /**
   * Parallelism.
   * @default 1
   */
  parallelism?: number;
  /**
   * How many argon2 hashes run at once; more wait in line. Each takes a thread of the
   * module's own and `memoryCost` KiB. On Linux the threads run at a lower priority (nice 10)
   * than the event loop, so every core can hash while requests keep precedence; elsewhere
   * one core stays free for the event loop. More than the machine's cores adds nothing.
   * @default the number of CPUs on Linux, else max(1, CPUs - 1)
   */
  concurrency?: number;
  /**
   * Shortest password accepted when an account is created or its password changed.
   * @default 8
   */
  minLength?: number;
  /**
   * Longest password accepted, in characters (Unicode code points). Nothing is truncated:
   * a longer password is refused.
   * @default 128
   */
  maxLength?: number;
}

/** A key that encrypts TOTP secrets at rest (AES-256-GCM). */
export interface TwoFactorEncryptionKey {
  /** Stored beside each secret, so keys can rotate: the first key encrypts, every key decrypts. */
  id: string;
  /** 32 bytes, base64 or base64url encoded (`openssl rand -base64 32`). */
  key: string;
}

/** TOTP (RFC 6238) as an account's second factor, instead of its secret key. */
export interface TwoFactorTotpOptions {
  /**
   * Keys that encrypt the TOTP secrets in the database; `encryptionKeys[0]` encrypts new ones.
   * Required when TOTP is on.
   */
  encryptionKeys: TwoFactorEncryptionKey[];
  /**
   * Issuer shown by authenticator apps (in the `otpauth://` URI).
   * @default the `issuer` option
   */
  issuer?: string;
  /**
   * HMAC algorithm of the codes (most authenticator apps support only SHA1).
   * @default 'SHA1'
   */
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  /**
   * Digits per code.
   * @default 6
   */
  digits?: 6 | 7 | 8;
  /**
   * Seconds per time step.
   * @default 30
   */
  period?: number;
  /**
   * Steps accepted either side of the current one (clock drift).
   * @default 1
   */
  window?: number;
  /**
   * Recovery codes handed out when TOTP is confirmed (each works once).
   * @default 10
   */
  recoveryCodes?: number;
  /**
   * Seconds a started enrolment stays pending; after that it must be started again (with
   * re-authentication), so a forgotten enrolment cannot be confirmed later by someone else.
   * @default 600
   */
  enrolmentTtl?: number;
}

/** A client allowed to call the introspection route (RFC 7662) with HTTP Basic. */
export interface TwoFactorIntrospectionClient {
  /** The Basic user name. */
  id: string;
  /** The Basic password; at least 32 characters. */
  secret: string;
}

/** A TypeORM entity class. */
export type TwoFactorEntityClass = new (...args: never[]) => object;

/**
 * The application's own users table, for apps that already have accounts: the module logs in
 * against it and keeps only its own rows (second factor, tokens, lockout) beside it.
 * @example { entity: User, fields: { id: 'id', username: 'email', passwordHash: 'passwordHash', disabled: 'disabled' } }
 */
export interface TwoFactorAccountsOptions {
  /** The application's TypeORM entity class of its users. Its id may be a uuid, integer or string column. */
  entity: TwoFactorEntityClass;
  /** The entity's property names for what the module reads and writes. */
  fields?: TwoFactorAccountFields;
}

/** Property names of the application's user entity (`accounts.fields`). */
export interface TwoFactorAccountFields {
  /**
   * The primary column; the token's `sub` is its string form (at most 36 characters).
   * @default 'id'
   */
  id?: string;
  /**
   * The login name column. It holds the normalised form (`normaliseUsername(name).key`:
   * trimmed, NFC, lower case), which is what logins compare; keep it unique.
   * @default 'username'
   */
  username?: string;
  /**
   * The password hash column (a PHC string of `PasswordHasher.hash`, 255 characters).
   * @default 'passwordHash'
   */
  passwordHash?: string;
  /**
   * A boolean column: `true` refuses logins. Without it, `AccountService.disable` is refused.
   * @default undefined
   */
  disabled?: string;
}

/** Rules for new and renamed usernames. */
export interface TwoFactorUsernameOptions {
  /**
   * Fewest characters.
   * @default 3
   */
  minLength?: number;
  /**
   * Most characters (at most 254, the longest email address).
   * @default 254
   */
  maxLength?: number;
  /**
   * The application's own rule, checked after the lengths and the ban on control characters:
   * return a message saying what is wrong (answered as 400 by the sample app), or `null`.
   * @default undefined
   * @example (name) => (/^[^@\s]+@[^@\s]+$/.test(name) ? null : 'username must be an email address')
   */
  validate?: (username: string) => string | null;
}

/** Extra claims an application adds to access tokens (`claims` option): a plain JSON object. */
export type TwoFactorClaims = object;

/** Options of `TwoFactorAuthModule.forRoot()` and of the factory in `forRootAsync()`. */
export interface TwoFactorAuthModuleOptions {
  /**
   * `iss` of every issued token, and the only issuer accepted. Required.
   * @example 'https://api.example.com'
   */
  issuer: string;
  /**
   * `aud` of issued tokens; when set, tokens without this audience are refused.
   * @default undefined (no audience claim)
   */
  audience?: string;
  /**
   * The key ring: JWKs with `kid` and `alg`. `keys[0]` signs new tokens; every key verifies.
   * Required, at least one key.
   * @example JSON.parse(fs.readFileSync('jwks.json', 'utf8')).keys
   */
  keys: TwoFactorJwk[];
  /**
   * Access token lifetime in seconds.
   * @default 900
   */
  accessTokenTtl?: number;
  /**
   * Refresh token lifetime in seconds.
   * @default 604800
   */
  refreshTokenTtl?: number;
  /**
   * Leeway in seconds for `exp`, `nbf` and `iat` (at most 60).
   * @default 5
   */
  clockTolerance?: number;
  /**
   * Per-username lockout; `false` turns it off.
   * @default { maxAttempts: 5, seconds: 900 }
   */
  lockout?: TwoFactorLockoutOptions | false;
  /**
   * Per-client throttling of the token routes; `false` turns it off.
   * @default { limit: 20, ttl: 60 }
   */
  throttle?: TwoFactorThrottleOptions | false;
  /**
   * Revocation view tuning.
   * @default { syncInterval: 500, maxStaleness: 5000, verifiedCacheSize: 10000 }
   */
  revocation?: TwoFactorRevocationOptions;
  /**
   * Expired token housekeeping.
   * @default { graceSeconds: 86400, intervalSeconds: 3600, batchSize: 1000 }
   */
  prune?: TwoFactorPruneOptions;
  /**
   * Password hashing parameters and length limits.
   * @default { memoryCost: 19456, timeCost: 2, parallelism: 1, minLength: 8, maxLength: 128 }
   */
  password?: TwoFactorPasswordOptions;
  /**
   * Key (at least 32 bytes) of the HMAC that secret keys are stored under. Without it the
   * hash is still keyed, with a fixed key: 256-bit random secret keys cannot be guessed
   * from their hash either way, but a pepper kept outside the database adds defence in depth.
   * @default undefined
   */
  secretKeyPepper?: string | Buffer;
  /**
   * Redis shared by all instances (URL or an ioredis client): carries revocations at once
   * and holds the throttling counters. Without it, one instance is fully correct and several
   * instances are correct within `revocation.syncInterval`. A URL needs the optional peer
   * `ioredis` installed (`npm i ioredis`); without it the start-up stops and says so.
   * @default undefined
   */
  redis?: string | TwoFactorRedisClient;
  /**
   * TOTP as a second factor (per account, chosen by the account); `false` turns it off.
   * @default false
   */
  totp?: TwoFactorTotpOptions | false;
  /**
   * Token introspection (RFC 7662) at `POST <prefix>/introspect` for these clients; `false`
   * (no clients) answers that route with 404.
   * @default false
   */
  introspection?: { clients: TwoFactorIntrospectionClient[] } | false;
  /**
   * Rules for usernames at sign-up and rename.
   * @default { minLength: 3, maxLength: 254 }
   */
  usernames?: TwoFactorUsernameOptions;
  /**
   * Adds the application's claims (roles, tenant, …) to every access token, at login and at
   * each refresh (so a change shows at the next refresh). It receives the account's row: the
   * module's `Account`, or the application's own user with `accounts`. The result must be a
   * plain JSON object without registered names (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`,
   * `jti`, `cnf`, …): those make the token request fail with an error naming the claim. Guards
   * expose the claims as `principal.claims`, read from the token: no lookup per request.
   * @default undefined
   * @example (user: User) => ({ roles: user.roles })
   */
  claims?(account: object): TwoFactorClaims | Promise<TwoFactorClaims>;
  /**
   * DPoP (RFC 9449) sender-constrained tokens. Always available to clients that send proofs;
   * this tunes it, or makes it required.
   * @default { required: false, proofMaxAge: 60, nonce: false, nonceLifetime: 300 }
   */
  dpop?: TwoFactorDpopOptions;
}

/** Options fixed when the module is imported (they decide which controllers exist). */
export interface TwoFactorAuthModuleExtras {
  /**
   * Mount the module's routes, and where; `false` mounts none (write your own with `TokenService`).
   * @default { prefix: 'auth', jwks: true }
   */
  routes?: TwoFactorRoutesOptions | false;
  /**
   * Register the module globally so its services and guards are injectable everywhere.
   * @default false
   */
  isGlobal?: boolean;
  /**
   * Log in against the application's own users table instead of the module's `Account`
   * (see the README, "Using your own users table").
   * @default undefined (the module's own `Account` store)
   */
  accounts?: TwoFactorAccountsOptions;
}

/** Implemented by a class passed to `forRootAsync({ useClass })`. */
export interface TwoFactorAuthOptionsFactory {
  createTwoFactorAuthOptions(): TwoFactorAuthModuleOptions | Promise<TwoFactorAuthModuleOptions>;
}

/** Every optional option resolved to a value: what the module runs with. */
export interface ResolvedTwoFactorAuthOptions {
  issuer: string;
  audience: string | undefined;
  keys: TwoFactorJwk[];
  accessTokenTtl: number;
  refreshTokenTtl: number;
  clockTolerance: number;
  lockout: Required<TwoFactorLockoutOptions> | false;
  throttle: Required<TwoFactorThrottleOptions> | false;
  revocation: Required<TwoFactorRevocationOptions>;
  prune: Required<TwoFactorPruneOptions>;
  password: Required<TwoFactorPasswordOptions>;
  secretKeyPepper: Buffer | undefined;
  redis: string | TwoFactorRedisClient | undefined;
  totp: ResolvedTotpOptions | false;
  introspection: { clients: TwoFactorIntrospectionClient[] } | false;
  usernames: Required<Omit<TwoFactorUsernameOptions, 'validate'>> &
    Pick<TwoFactorUsernameOptions, 'validate'>;
  claims: ((account: object) => TwoFactorClaims | Promise<TwoFactorClaims>) | undefined;
  dpop: ResolvedDpopOptions;
}

/** DPoP options with every default filled in. */
export interface ResolvedDpopOptions {
  required: boolean;
  algorithms: readonly TwoFactorDpopAlgorithm[];
  proofMaxAge: number;
  nonce: boolean;
  nonceLifetime: number;
  /** `publicUrl` without a trailing slash (origin and path prefix), or undefined. */
  publicUrl: string | undefined;
}

/** TOTP options with every default filled in and the keys decoded. */
export interface ResolvedTotpOptions {
  encryptionKeys: { id: string; key: Buffer }[];
  issuer: string;
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  digits: number;
  period: number;
  window: number;
  recoveryCodes: number;
  enrolmentTtl: number;
}

/**
 * The defaults of every optional option, in one place. The README's options table is
 * checked against this object by a test.
 */
export const TWO_FACTOR_AUTH_DEFAULTS = Object.freeze({
  accessTokenTtl: 900,
  refreshTokenTtl: 604800,
  clockTolerance: 5,
  lockout: Object.freeze({ maxAttempts: 5, seconds: 900 }),
  throttle: Object.freeze({ limit: 20, ttl: 60 }),
  revocation: Object.freeze({ syncInterval: 500, maxStaleness: 5000, verifiedCacheSize: 10000 }),
  prune: Object.freeze({ graceSeconds: 86400, intervalSeconds: 3600, batchSize: 1000 }),
  password: Object.freeze({
    memoryCost: 19456,
    timeCost: 2,
    parallelism: 1,
    // Hashing threads run at a lower priority on Linux (see PasswordHasher): every core can
    // hash while the event loop keeps precedence. Elsewhere one core stays free for it.
    concurrency:
      process.platform === 'linux'
        ? availableParallelism()
        : Math.max(1, availableParallelism() - 1),
    minLength: 8,
    maxLength: 128,
  }),
  totp: Object.freeze({
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    window: 1,
    recoveryCodes: 10,
    enrolmentTtl: 600,
  }),
  introspection: false,
  usernames: Object.freeze({ minLength: 3, maxLength: 254 }),
  dpop: Object.freeze({
    required: false,
    algorithms: Object.freeze([
      'ES256',
      'ES384',
      'ES512',
      'EdDSA',
      'Ed25519',
      'PS256',
      'PS384',
      'PS512',
      'RS256',
      'RS384',
      'RS512',
    ] as const),
    proofMaxAge: 60,
    nonce: false,
    nonceLifetime: 300,
  }),
  routes: Object.freeze({ prefix: 'auth', jwks: true }),
  isGlobal: false,
});
