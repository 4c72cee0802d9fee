import type { FactoryProvider } from '@nestjs/common';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigurationError,
  loadAppConfig,
  type AppConfig,
} from '../../sample-app/src/config/app.config.js';
import { loadSigningKeys } from '../../sample-app/src/config/keys.loader.js';
import { redisProvider } from '../../sample-app/src/health/redis.provider.js';
import {
  redactSecrets,
  SecretRedactingLogger,
  secretValues,
} from '../../sample-app/src/secret-redacting.logger.js';
import { validateTwoFactorAuthOptions } from '../../lib/two-factor-auth.validate.js';
import type { TwoFactorAuthModuleOptions, TwoFactorJwk } from '../../lib/index.js';

/** A recognisable secret: no error message may ever contain it. */
const MARKER = 'Zz9MARKERsecret';
/** A well-formed TOTP encryption key, given beside a bad one: it must not be shown either. */
const VALID_TOTP_KEY = randomBytes(32).toString('base64');

/** The message of what `fn` throws; fails if it does not throw. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error('expected an error');
}

function expectNoSecret(message: string, ...secrets: string[]) {
  for (const secret of [MARKER, ...secrets]) expect(message).not.toContain(secret);
}

describe('start-up errors never show a secret (sample app environment)', () => {
  it.each([
    ['SECRET_KEY_PEPPER', `short-${MARKER}`],
    ['TOTP_ENCRYPTION_KEYS', `good:${VALID_TOTP_KEY},bad:${MARKER}`],
    ['TOTP_ENCRYPTION_KEYS', `${MARKER}`],
    ['INTROSPECTION_CLIENTS', `client:${MARKER}`],
    ['INTROSPECTION_CLIENTS', `client ${MARKER}${MARKER}${MARKER}`],
    ['DATABASE_URL', `oracle://user:${MARKER}@db.example/app`],
    ['DATABASE_URL', `postgres://user:${MARKER}@[bad/app`],
    ['DATABASE_URL', `mysql://user:${MARKER}@[bad/app`],
    ['DATABASE_URL', `user:${MARKER}@db.example/app`],
    ['REDIS_URL', `http://:${MARKER}@cache.example:6379`],
    ['REDIS_URL', `redis://:${MARKER}@[bad:6379`],
  ])('%s: names the variable, not its value', (name, value) => {
    const message = errorOf(() => loadAppConfig({ [name]: value }));
    expect(message).toContain(name);
    expectNoSecret(message, VALID_TOTP_KEY);
  });

  it('names every bad variable at once, showing only the values that are no secret', () => {
    const message = errorOf(() =>
      loadAppConfig({
        PORT: 'not-a-port',
        SECRET_KEY_PEPPER: MARKER,
        TOTP_ENCRYPTION_KEYS: `k:${MARKER}`,
        INTROSPECTION_CLIENTS: `c:${MARKER}`,
        DATABASE_URL: `postgres://u:${MARKER}@[x/db`,
        REDIS_URL: `redis://u:${MARKER}@[x`,
      }),
    );
    for (const name of [
      'PORT="not-a-port"',
      'SECRET_KEY_PEPPER',
      'TOTP_ENCRYPTION_KEYS',
      'INTROSPECTION_CLIENTS',
      'DATABASE_URL',
      'REDIS_URL',
    ]) {
      expect(message).toContain(name);
    }
    expectNoSecret(message);
  });

  it('does not quote a key file that is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-secret-'));
    const file = join(dir, 'jwks.json');
    // V8 quotes the 10 characters either side of the mistake in its message.
    writeFileSync(file, `{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":${MARKER}}]}`);
    const config = loadAppConfig({ JWT_KEYS_FILE: file, DATA_DIR: dir });
    const message = errorOf(() => loadSigningKeys(config));
    expect(message).toMatch(/JWT_KEYS_FILE .* is not valid JSON/);
    expectNoSecret(message, MARKER.slice(0, 8));
  });

  it('refuses a Redis URL ioredis cannot parse without quoting it', async () => {
    const config: AppConfig = { ...loadAppConfig({}), redisUrl: `redis://:${MARKER}@[bad:1` };
    const factory = (redisProvider as FactoryProvider).useFactory as (
      c: AppConfig,
    ) => Promise<unknown>;
    const error = await factory(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('REDIS_URL');
    expectNoSecret((error as Error).message);
  });
});

describe('module option errors never show a secret', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  });
  const goodKey = { ...ec, kid: 'good', alg: 'ES256' } as TwoFactorJwk;
  const base = { issuer: 'https://issuer.test', keys: [goodKey] };
  const secret = `${MARKER}${MARKER}${MARKER}`;

  it.each<[string, Record<string, unknown>]>([
    ['secretKeyPepper', { secretKeyPepper: MARKER }],
    ['secretKeyPepper', { secretKeyPepper: { value: secret } }],
    ['totp.encryptionKeys[0].key', { totp: { encryptionKeys: [{ id: 'bad', key: MARKER }] } }],
    [
      'totp.encryptionKeys[1].key',
      {
        totp: {
          encryptionKeys: [
            { id: 'good', key: VALID_TOTP_KEY },
            { id: 'bad', key: MARKER },
          ],
        },
      },
    ],
    [
      'introspection.clients[0].secret',
      { introspection: { clients: [{ id: 'c', secret: MARKER }] } },
    ],
    ['introspection.clients[0].id', { introspection: { clients: [{ id: 'c:x', secret }] } }],
    ['redis', { redis: `redis://:${MARKER}@[bad:6379` }],
    ['redis', { redis: `http://:${MARKER}@cache.example` }],
    // A secret put in the wrong option is not shown either.
    ['accessTokenTtl', { accessTokenTtl: secret }],
    ['lockout.maxAttempts', { lockout: { maxAttempts: { pepper: secret } } }],
    ['secretKeyPeper', { secretKeyPeper: secret }],
  ])('%s', (option, extra) => {
    const message = errorOf(() =>
      validateTwoFactorAuthOptions({ ...base, ...extra } as TwoFactorAuthModuleOptions),
    );
    expect(message).toContain(`"${option}"`);
    expectNoSecret(message, VALID_TOTP_KEY);
  });

  it.each<[string, Record<string, unknown>]>([
    ['an HMAC secret too short', { kty: 'oct', k: MARKER, kid: 'h', alg: 'HS256' }],
    ['an EC key off its curve', { ...ec, x: MARKER, d: MARKER, kid: 'e', alg: 'ES256' }],
    [
      'an RSA key that does not import',
      { kty: 'RSA', n: MARKER, e: 'AQAB', d: MARKER, kid: 'r', alg: 'RS256' },
    ],
    ['a key of the wrong type', { kty: 'oct', k: secret, kid: 'x', alg: 'ES256' }],
  ])('keys: %s', (_case, jwk) => {
    const message = errorOf(() =>
      validateTwoFactorAuthOptions({ ...base, keys: [goodKey, jwk as TwoFactorJwk] }),
    );
    expect(message).toContain('"keys[1]"');
    expectNoSecret(message, String(ec.d));
  });
});

describe('the sample app logger masks the secrets of the environment', () => {
  const env = {
    SECRET_KEY_PEPPER: `pepper-${MARKER}`,
    TOTP_ENCRYPTION_KEYS: `a:${VALID_TOTP_KEY},b:totp-${MARKER}`,
    INTROSPECTION_CLIENTS: `c:client-${MARKER}`,
    DATABASE_URL: `postgres://u:db%40${MARKER}@db.example/app`,
    REDIS_URL: `redis://:redis-${MARKER}@[bad`,
    PORT: '3000',
  };

  it('finds each secret, decoded URL passwords included', () => {
    const secrets = secretValues(env);
    for (const value of [
      `pepper-${MARKER}`,
      VALID_TOTP_KEY,
      `totp-${MARKER}`,
      `client-${MARKER}`,
      `db%40${MARKER}`,
      `db@${MARKER}`,
      `redis-${MARKER}`,
    ]) {
      expect(secrets).toContain(value);
    }
    expect(secrets).not.toContain('3000');
    expect(redactSecrets(`url ${env.DATABASE_URL} key ${VALID_TOTP_KEY}`, secrets)).toBe(
      'url postgres://u:[secret]@db.example/app key [secret]',
    );
  });

  it('masks them in messages, error objects and stack traces', () => {
    const written: string[] = [];
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((stream) => stream.write);
    for (const stream of streams) {
      stream.write = ((chunk: unknown) => written.push(String(chunk)) > 0) as typeof stream.write;
    }
    try {
      const logger = new SecretRedactingLogger(secretValues(env), { logLevels: ['error', 'log'] });
      const error = Object.assign(new TypeError(`Invalid URL ${env.REDIS_URL}`), {
        input: env.REDIS_URL,
      });
      logger.error(error);
      logger.error(`cannot connect with pepper-${MARKER}`, `Error: db@${MARKER}\n    at x`, 'Ctx');
      logger.log(`key ${VALID_TOTP_KEY}`);
    } finally {
      streams.forEach((stream, i) => (stream.write = originals[i]));
    }
    const output = written.join('');
    expect(output).toContain('[secret]');
    expect(output).toContain('Invalid URL');
    expectNoSecret(output, VALID_TOTP_KEY);
  });
});
