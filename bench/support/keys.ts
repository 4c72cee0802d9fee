import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';

export const ALL_ALGORITHMS: readonly TwoFactorJwsAlgorithm[] = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

const CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** Private keys are costly to make (RSA); one per kind is reused across algorithms. */
const cache = new Map<string, KeyObject>();

function privateKeyFor(alg: TwoFactorJwsAlgorithm): KeyObject {
  const kind = alg.startsWith('RS') || alg.startsWith('PS') ? 'rsa' : alg === 'EdDSA' ? 'ed' : alg;
  let key = cache.get(kind);
  if (!key) {
    if (kind === 'rsa') key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    else if (kind === 'ed') key = generateKeyPairSync('ed25519').privateKey;
    else key = generateKeyPairSync('ec', { namedCurve: CURVES[alg] }).privateKey;
    cache.set(kind, key);
  }
  return key;
}

/** A fresh private JWK (an `oct` secret for HMAC) with `kid` and `alg`, made with node:crypto. */
export function generateJwk(alg: TwoFactorJwsAlgorithm, kid = `bench-${alg.toLowerCase()}`) {
  if (alg.startsWith('HS')) {
    const bytes = Number(alg.slice(2)) / 8;
    return { kty: 'oct', k: randomBytes(bytes).toString('base64url'), kid, alg } as TwoFactorJwk;
  }
  const jwk = privateKeyFor(alg).export({ format: 'jwk' }) as { kty: string };
  return { ...jwk, kid, alg } as TwoFactorJwk;
}

/** Writes a JWK Set file (as `JWT_KEYS_FILE` expects) and returns its path. */
export function writeJwks(file: string, keys: TwoFactorJwk[]): string {
  writeFileSync(file, JSON.stringify({ keys }), { mode: 0o600 });
  return file;
}
