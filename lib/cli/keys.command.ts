import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { KeyRing } from '../keys/key-ring.js';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../two-factor-auth.options.js';
import { ALGORITHMS } from '../keys/jws.util.js';

/** A JWK Set as the module reads it. */
export interface JwkSet {
  keys: TwoFactorJwk[];
}

/** Thrown for a mistake on the command line; the CLI prints the message and exits with 2. */
export class UsageError extends Error {}

/**
 * A new private key (or HMAC secret of the hash's length) for `alg`, with `kid`.
 * RSA keys have 3072 bits unless `modulusLength` says otherwise (2048 is the least accepted).
 */
export function generateKey(
  alg: string,
  kid?: string,
  { modulusLength = 3072 } = {},
): TwoFactorJwk {
  if (!Object.hasOwn(ALGORITHMS, alg)) {
    throw new UsageError(
      `Unknown --alg "${alg}"; choose one of ${Object.keys(ALGORITHMS).join(', ')}`,
    );
  }
  const algorithm = alg as TwoFactorJwsAlgorithm;
  const spec = ALGORITHMS[algorithm];
  const id =
    kid ??
    `${algorithm.toLowerCase()}-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
  if (spec.family === 'HMAC') {
    return {
      kty: 'oct',
      k: randomBytes(spec.hashBytes).toString('base64url'),
      kid: id,
      alg: algorithm,
    };
  }
  const { privateKey } =
    spec.family === 'ECDSA'
      ? generateKeyPairSync('ec', { namedCurve: spec.crv! })
      : spec.family === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength });
  return { ...(privateKey.export({ format: 'jwk' }) as { kty: string }), kid: id, alg: algorithm };
}

/** Reads and checks a JWK Set file (every key must import, exactly as the module would). */
export function readJwkSet(file: string): JwkSet {
  if (!existsSync(file)) throw new UsageError(`${file} does not exist`);
  let set: unknown;
  try {
    set = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new UsageError(`${file} is not valid JSON`);
  }
  const keys = (set as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new UsageError(`${file} is not a JWK Set ({"keys": [...]})`);
  KeyRing.fromJwks(keys as TwoFactorJwk[]);
  return { keys: keys as TwoFactorJwk[] };
}

/** Writes a JWK Set atomically (temp file + rename), readable by its owner only. */
export function writeJwkSet(file: string, set: JwkSet): void {
  KeyRing.fromJwks(set.keys);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(set, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

/** Puts a new signing key first; the old keys stay, so their tokens keep working. */
export function rotate(set: JwkSet, alg: string | undefined, kid?: string): JwkSet {
  const newKey = generateKey(alg ?? set.keys[0].alg, kid);
  if (set.keys.some((k) => k.kid === newKey.kid))
    throw new UsageError(`kid "${newKey.kid}" is already in the set`);
  return { keys: [newKey, ...set.keys] };
}

/** Removes a key that no longer signs: tokens it signed stop working. */
export function retire(set: JwkSet, kid: string): JwkSet {
  const index = set.keys.findIndex((k) => k.kid === kid);
  if (index === -1)
    throw new UsageError(
      `No key with kid "${kid}"; the set has ${set.keys.map((k) => k.kid).join(', ')}`,
    );
  if (index === 0) {
    throw new UsageError(
      `"${kid}" is the signing key (the first); rotate first, wait for its tokens to expire, then retire it`,
    );
  }
  return { keys: set.keys.filter((k) => k.kid !== kid) };
}
