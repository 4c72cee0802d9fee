import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { generateKey } from '../../lib/cli/keys.command.js';
import { ALGORITHMS } from '../../lib/core/keys/jws.util.js';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';

/** Every algorithm the key ring supports, from the module's own table. */
export const ALL_ALGORITHMS = Object.keys(ALGORITHMS) as readonly TwoFactorJwsAlgorithm[];

/** RSA keys are costly to make: one 2048-bit key serves every RS and PS algorithm. */
let rsaKey: KeyObject | undefined;

function sharedRsaKey(): KeyObject {
  rsaKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return rsaKey;
}

/** A fresh private JWK (an `oct` secret for HMAC) with `kid` and `alg`; RSA keys are shared. */
export function generateJwk(alg: TwoFactorJwsAlgorithm, kid = `bench-${alg.toLowerCase()}`) {
  if (!alg.startsWith('RS') && !alg.startsWith('PS')) return generateKey(alg, kid);
  const jwk = sharedRsaKey().export({ format: 'jwk' }) as { kty: string };
  return { ...jwk, kid, alg } as TwoFactorJwk;
}

/** Writes a JWK Set file (as `JWT_KEYS_FILE` expects) and returns its path. */
export function writeJwks(file: string, keys: TwoFactorJwk[]): string {
  writeFileSync(file, JSON.stringify({ keys }), { mode: 0o600 });
  return file;
}
