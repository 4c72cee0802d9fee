import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TwoFactorJwk } from 'nestjs-rest-2fa';
import { ConfigurationError, type AppConfig } from './app.config.js';
import { makePrivateDir } from './paths.js';

/**
 * The signing keys: the JWK Set in `JWT_KEYS_FILE`, or, in development only, an ES256 key
 * generated once into the data folder. In production without `JWT_KEYS_FILE` the app refuses
 * to start: a key made up at start-up would differ per instance and per restart.
 */
export function loadSigningKeys(config: AppConfig): TwoFactorJwk[] {
  if (config.keysFile) return readJwks(config.keysFile, 'JWT_KEYS_FILE');
  if (config.production) {
    throw new ConfigurationError(
      'JWT_KEYS_FILE is required with NODE_ENV=production: point it at a JWK Set of private keys, each with kid and alg ' +
        '(create one with `npx nestjs-rest-2fa keys generate --alg ES256 --out jwks.json`).',
    );
  }
  const file = join(config.dataDir, 'dev-jwks.json');
  if (!existsSync(file)) {
    makePrivateDir(config.dataDir);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = {
      ...privateKey.export({ format: 'jwk' }),
      kid: `dev-${randomUUID()}`,
      alg: 'ES256',
    };
    writeFileSync(file, JSON.stringify({ keys: [jwk] }, null, 2), { mode: 0o600 });
  }
  return readJwks(file, 'the development key file');
}

/**
 * The pepper of secret-key hashes: `SECRET_KEY_PEPPER`, or in development one generated once
 * into the data folder. In production without it the module's fixed key is used (see SECURITY.md).
 */
export function loadSecretKeyPepper(config: AppConfig): string | undefined {
  if (config.secretKeyPepper || config.production) return config.secretKeyPepper;
  const file = join(config.dataDir, 'dev-pepper');
  if (!existsSync(file)) {
    makePrivateDir(config.dataDir);
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

function readJwks(file: string, source: string): TwoFactorJwk[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    // Node's message names the file and the reason (ENOENT, EACCES), nothing of its content.
    throw new ConfigurationError(`${source} cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text around the mistake, private keys included.
    throw new ConfigurationError(`${source} (${file}) is not valid JSON`);
  }
  const keys = (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ConfigurationError(
      `${source} (${file}) must be a JWK Set: {"keys": [ … ]} with at least one key`,
    );
  }
  return keys as TwoFactorJwk[];
}

/**
 * TOTP settings: on with `TOTP_ENCRYPTION_KEYS`; in development without it, with a key generated
 * once into the data folder; in production without a key, off, and `TOTP_ENABLED=true` without
 * a key stops the start-up.
 */
export function loadTotpKeys(config: AppConfig): { id: string; key: string }[] | false {
  if (config.totpEnabled === false) return false;
  if (config.totpEncryptionKeys.length > 0) return config.totpEncryptionKeys;
  if (config.production) {
    if (config.totpEnabled) {
      throw new ConfigurationError(
        'TOTP_ENABLED=true needs TOTP_ENCRYPTION_KEYS with NODE_ENV=production (id:base64key, key from `openssl rand -base64 32`), so TOTP secrets are encrypted at rest.',
      );
    }
    return false;
  }
  const file = join(config.dataDir, 'dev-totp-key');
  if (!existsSync(file)) {
    makePrivateDir(config.dataDir);
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  }
  return [{ id: 'dev', key: readFileSync(file, 'utf8').trim() }];
}
