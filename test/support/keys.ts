import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';

/** A fresh private JWK (or HMAC secret) for `alg`, with `kid`. */
export function generateJwk(alg: TwoFactorJwsAlgorithm, kid: string): TwoFactorJwk {
  const family = alg.slice(0, 2);
  if (family === 'HS') {
    const bytes = Number(alg.slice(2)) / 8;
    return { kty: 'oct', k: randomBytes(bytes).toString('base64url'), kid, alg };
  }
  let privateKey;
  if (family === 'RS' || family === 'PS') {
    ({ privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 }));
  } else if (family === 'ES') {
    const namedCurve = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg as 'ES256'];
    ({ privateKey } = generateKeyPairSync('ec', { namedCurve }));
  } else {
    ({ privateKey } = generateKeyPairSync('ed25519'));
  }
  return { ...(privateKey.export({ format: 'jwk' }) as { kty: string }), kid, alg };
}

/** Writes a JWK Set file and returns its path. */
export function writeJwks(dir: string, keys: TwoFactorJwk[], name = 'jwks.json'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ keys }));
  return file;
}
