import { createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { TwoFactorJwsAlgorithm } from '../options/two-factor-auth.options.js';

/** How each algorithm signs: the hash, the key type it needs and its signature form. */
export interface AlgorithmSpec {
  family: 'HMAC' | 'RSA' | 'RSA-PSS' | 'ECDSA' | 'EdDSA';
  hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** Bytes of the hash output: the shortest HMAC secret accepted, and the PSS salt. */
  hashBytes: number;
  /** ECDSA only: the curve and the fixed length of an r||s signature. */
  crv?: string;
  signatureBytes?: number;
  /**
   * Signs on the event loop even where a thread-pool path exists: the signature costs about
   * what handing it to the pool and taking the result back costs the event loop (ES256 and
   * EdDSA: ~33 µs either way, measured), so the pool would only add its own CPU and a hop.
   */
  signsInline?: true;
}

export const ALGORITHMS: Readonly<Record<TwoFactorJwsAlgorithm, AlgorithmSpec>> = Object.freeze({
  HS256: { family: 'HMAC', hash: 'sha256', hashBytes: 32, signsInline: true },
  HS384: { family: 'HMAC', hash: 'sha384', hashBytes: 48, signsInline: true },
  HS512: { family: 'HMAC', hash: 'sha512', hashBytes: 64, signsInline: true },
  RS256: { family: 'RSA', hash: 'sha256', hashBytes: 32 },
  RS384: { family: 'RSA', hash: 'sha384', hashBytes: 48 },
  RS512: { family: 'RSA', hash: 'sha512', hashBytes: 64 },
  PS256: { family: 'RSA-PSS', hash: 'sha256', hashBytes: 32 },
  PS384: { family: 'RSA-PSS', hash: 'sha384', hashBytes: 48 },
  PS512: { family: 'RSA-PSS', hash: 'sha512', hashBytes: 64 },
  ES256: {
    family: 'ECDSA',
    hash: 'sha256',
    hashBytes: 32,
    crv: 'P-256',
    signatureBytes: 64,
    signsInline: true,
  },
  ES384: { family: 'ECDSA', hash: 'sha384', hashBytes: 48, crv: 'P-384', signatureBytes: 96 },
  ES512: { family: 'ECDSA', hash: 'sha512', hashBytes: 64, crv: 'P-521', signatureBytes: 132 },
  EdDSA: { family: 'EdDSA', hash: null, hashBytes: 0, signsInline: true },
});

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url decoding: no padding, no foreign characters, canonical trailing bits. */
export function decodeBase64url(segment: string): Buffer | null {
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) return null;
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : null;
}

/** A JSON object from UTF-8 bytes (a JWS header or payload), or `null` for anything else. */
export function parseJsonObject(bytes: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Signs `input` (the `header.payload` string) with `key` under `alg`. */
export function signInput(alg: TwoFactorJwsAlgorithm, key: KeyObject, input: string): Buffer {
  const spec = ALGORITHMS[alg];
  if (spec.family === 'HMAC') return createHmac(spec.hash!, key).update(input).digest();
  return sign(spec.hash, Buffer.from(input), keyOptions(spec, key));
}

/**
 * `signInput` on libuv's thread pool (node:crypto's one-shot `sign` with a callback) for the
 * algorithms whose signature costs far more than the hop: RSA, RSA-PSS, ES384 and ES512 (from
 * 260 µs to 1.5 ms on the event loop, against ~40-130 µs to hand them over). The others sign
 * at once (`signsInline`).
 */
export function signInputOffThread(
  alg: TwoFactorJwsAlgorithm,
  key: KeyObject,
  input: string,
): Promise<Buffer> {
  const spec = ALGORITHMS[alg];
  if (spec.signsInline) return Promise.resolve(signInput(alg, key, input));
  return new Promise((resolve, reject) => {
    sign(spec.hash, Buffer.from(input), keyOptions(spec, key), (error, signature) =>
      error ? reject(error) : resolve(signature),
    );
  });
}

/**
 * What another thread needs to sign with node:crypto's one-shot `sign` as `signInput` would:
 * the key and the hash (`null` for EdDSA), and for ECDSA the r||s encoding. Only for the
 * asymmetric algorithms that sign on the event loop (`signsInline`: ES256, EdDSA), whose
 * signatures a thread the request waits for anyway can make instead (the SQLite writer).
 */
export interface SigningSpec {
  key: KeyObject;
  hash: string | null;
  dsaEncoding?: 'ieee-p1363';
}

/** The `SigningSpec` of `key` under `alg`, or `null` where that does not apply. */
export function signingSpec(alg: TwoFactorJwsAlgorithm, key: KeyObject): SigningSpec | null {
  const spec = ALGORITHMS[alg];
  if (!spec.signsInline || spec.family === 'HMAC') return null;
  return spec.family === 'ECDSA'
    ? { key, hash: spec.hash, dsaEncoding: 'ieee-p1363' }
    : { key, hash: spec.hash };
}

/** The key argument of node:crypto's `sign` and `verify` for an asymmetric algorithm. */
function keyOptions(spec: AlgorithmSpec, key: KeyObject) {
  return spec.family === 'RSA-PSS'
    ? { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: spec.hashBytes }
    : spec.family === 'ECDSA'
      ? { key, dsaEncoding: 'ieee-p1363' as const }
      : key;
}

/** Checks `signature` over `input`; never throws. */
export function verifyInput(
  alg: TwoFactorJwsAlgorithm,
  key: KeyObject,
  input: string,
  signature: Buffer,
): boolean {
  const spec = ALGORITHMS[alg];
  try {
    if (spec.family === 'HMAC') {
      const expected = createHmac(spec.hash!, key).update(input).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    }
    // ECDSA: a fixed-length r||s, so DER tricks and all-zero "psychic" signatures are refused
    // before OpenSSL is asked (which refuses r = 0 or s = 0 as well).
    if (spec.family === 'ECDSA' && !plausibleEcdsa(spec, signature)) return false;
    return verify(spec.hash, Buffer.from(input), keyOptions(spec, key), signature);
  } catch {
    return false;
  }
}

function plausibleEcdsa(spec: AlgorithmSpec, signature: Buffer): boolean {
  return signature.length === spec.signatureBytes && !signature.every((b) => b === 0);
}

/**
 * `verifyInput` for an asymmetric algorithm, on libuv's thread pool instead of the event loop
 * (node:crypto's one-shot `verify` with a callback): a request that must check a signature of
 * its own (a DPoP proof) then costs the event loop almost nothing while it waits. Never rejects.
 */
export function verifyInputOffThread(
  alg: Exclude<TwoFactorJwsAlgorithm, 'HS256' | 'HS384' | 'HS512'>,
  key: KeyObject,
  input: string,
  signature: Buffer,
): Promise<boolean> {
  const spec = ALGORITHMS[alg];
  if (spec.family === 'ECDSA' && !plausibleEcdsa(spec, signature)) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      verify(spec.hash, Buffer.from(input), keyOptions(spec, key), signature, (error, valid) =>
        resolve(!error && valid),
      );
    } catch {
      resolve(false);
    }
  });
}
