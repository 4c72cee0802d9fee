import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { KeyRing } from '../core/keys/key-ring.js';
import type {
  TwoFactorJwk,
  TwoFactorJwsAlgorithm,
} from '../core/options/two-factor-auth.options.js';
import { ALGORITHMS } from '../core/keys/jws.util.js';

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

/**
 * Writes a JWK Set atomically, readable by its owner only: into a temp file of random name
 * created exclusively with mode 0600 (a file or symlink planted at that name makes it fail, never
 * receives the keys and never lends its mode), then moved into place. `replace: false` refuses
 * an existing file (a hard link fails if the name is taken, even by a dangling symlink); with
 * `replace: true` a symlink in place of the file is refused rather than replaced.
 */
export function writeJwkSet(file: string, set: JwkSet, { replace }: { replace: boolean }): void {
  KeyRing.fromJwks(set.keys);
  if (replace) refuseSymlink(file);
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(12).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, `${JSON.stringify(set, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (replace) {
      refuseSymlink(file);
      renameSync(temp, file);
    } else {
      try {
        linkSync(temp, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new UsageError(`${file} exists; use \`keys rotate ${file}\` to add a key to it`);
        }
        throw error;
      }
    }
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Refuses to write through a symlink: it could point at any file the operator can write. */
function refuseSymlink(file: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(file).isSymbolicLink();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (isLink) {
    throw new UsageError(
      `${file} is a symbolic link; name the key file itself, so that its replacement cannot land elsewhere`,
    );
  }
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
