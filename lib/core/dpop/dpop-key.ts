import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { TwoFactorDpopAlgorithm } from '../options/two-factor-auth.options.js';
import { decodeBase64url } from '../keys/jws.util.js';

/** A proof's public key: the `KeyObject` that checks its signatures, and its RFC 7638 thumbprint. */
export interface DpopKey {
  key: KeyObject;
  /** base64url(SHA-256) of the key's required members (RFC 7638), the `cnf.jkt` it binds. */
  jkt: string;
}

/** Members that only a private or secret key has: a proof carrying one is refused. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Bytes of each EC coordinate per curve; the curve each ECDSA algorithm signs with. */
const EC_CURVES: Record<string, { alg: TwoFactorDpopAlgorithm; bytes: number }> = {
  'P-256': { alg: 'ES256', bytes: 32 },
  'P-384': { alg: 'ES384', bytes: 48 },
  'P-521': { alg: 'ES512', bytes: 66 },
};
const OKP_CURVES: Record<string, number> = { Ed25519: 32, Ed448: 57 };
/** RSA moduli below 2048 bits are refused (NIST SP 800-131A); above 8192 only cost CPU. */
const RSA_BITS = { min: 2048, max: 8192 };

function member(jwk: Record<string, unknown>, name: string): string | null {
  const value = jwk[name];
  return typeof value === 'string' && decodeBase64url(value) !== null ? value : null;
}

function bytesOf(value: string): number {
  return decodeBase64url(value)!.length;
}

/** The RFC 7638 members of `jwk` for `alg`, in lexicographic order, or `null` if it does not fit. */
function requiredMembers(
  alg: TwoFactorDpopAlgorithm,
  jwk: Record<string, unknown>,
): Record<string, string> | null {
  switch (jwk.kty) {
    case 'EC': {
      const curve = typeof jwk.crv === 'string' ? EC_CURVES[jwk.crv] : undefined;
      const x = member(jwk, 'x');
      const y = member(jwk, 'y');
      if (!curve || curve.alg !== alg || !x || !y) return null;
      if (bytesOf(x) !== curve.bytes || bytesOf(y) !== curve.bytes) return null;
      return { crv: jwk.crv as string, kty: 'EC', x, y };
    }
    case 'OKP': {
      const bytes = typeof jwk.crv === 'string' ? OKP_CURVES[jwk.crv] : undefined;
      const x = member(jwk, 'x');
      if (bytes === undefined || !x || bytesOf(x) !== bytes) return null;
      if (alg !== 'EdDSA' && !(alg === 'Ed25519' && jwk.crv === 'Ed25519')) return null;
      return { crv: jwk.crv as string, kty: 'OKP', x };
    }
    case 'RSA': {
      const n = member(jwk, 'n');
      const e = member(jwk, 'e');
      // e = 65537 only: every client library uses it, and a huge exponent would make each
      // verification a full modular exponentiation (about 60 times the CPU).
      if (!/^[PR]S/.test(alg) || !n || e !== 'AQAB') return null;
      const modulus = decodeBase64url(n)!;
      const bits = modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24;
      if (modulus[0] === 0 || bits < RSA_BITS.min || bits > RSA_BITS.max) return null;
      return { e, kty: 'RSA', n };
    }
    default:
      return null;
  }
}

/**
 * The public key of a proof's `jwk` header for `alg`, or `null`: the key must be a public key
 * (no private or secret member), of the type and curve `alg` signs with, and well formed.
 * Only the RFC 7638 members are imported, so whatever else the header carries changes nothing.
 */
export function dpopKeyOf(alg: TwoFactorDpopAlgorithm, jwk: unknown): DpopKey | null {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return null;
  const fields = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((name) => name in fields)) return null;
  const required = requiredMembers(alg, fields);
  if (!required) return null;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: required, format: 'jwk' });
  } catch {
    return null;
  }
  return { key, jkt: jwkThumbprint(required) };
}

/** RFC 7638: base64url(SHA-256(the required members, sorted, as JSON without whitespace)). */
export function jwkThumbprint(required: Record<string, string>): string {
  const canonical = JSON.stringify(
    Object.fromEntries(
      Object.keys(required)
        .sort()
        .map((name) => [name, required[name]]),
    ),
  );
  return createHash('sha256').update(canonical).digest('base64url');
}
