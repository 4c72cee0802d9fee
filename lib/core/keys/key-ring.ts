import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { TwoFactorAuthConfigError } from '../options/two-factor-auth.options-validation.js';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../options/two-factor-auth.options.js';
import {
  ALGORITHMS,
  decodeBase64url,
  encodeJson,
  parseJsonObject,
  signInput,
  verifyInput,
  verifyInputOffThread,
  signInputOffThread,
  signingSpec,
  type SigningSpec,
} from './jws.util.js';

/** One imported key: the `KeyObject`s are built once, at start-up. */
export interface RingKey {
  kid: string;
  alg: TwoFactorJwsAlgorithm;
  /** Signs; `null` for a public-only (verify-only) key. */
  signingKey: KeyObject | null;
  /** Verifies (the public half, or the secret for HMAC). */
  verifyingKey: KeyObject;
  /** The public JWK published in the JWK Set; `null` for HMAC secrets. */
  publicJwk: Record<string, unknown> | null;
}

/** A compact JWS whose signature checked out against the ring. */
export interface VerifiedJws {
  header: { alg: TwoFactorJwsAlgorithm; kid: string; typ: string };
  payload: Record<string, unknown>;
}

/** Longest token accepted; anything longer is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 8192;
const KID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const ALLOWED_HEADER = new Set(['alg', 'kid', 'typ']);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function keyError(index: number, problem: string): TwoFactorAuthConfigError {
  return new TwoFactorAuthConfigError(`keys[${index}]`, problem);
}

function importKey(jwk: TwoFactorJwk, index: number): RingKey {
  if (typeof jwk !== 'object' || jwk === null) throw keyError(index, 'must be a JWK object.');
  const { kid, alg, kty } = jwk;
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) {
    throw keyError(index, 'needs a "kid": 1 to 128 printable ASCII characters.');
  }
  if (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg)) {
    throw keyError(
      index,
      `(kid "${kid}") needs an "alg" among ${Object.keys(ALGORITHMS).join(', ')}.`,
    );
  }
  const spec = ALGORITHMS[alg];
  const fits = (want: string) => {
    if (kty !== want) {
      throw keyError(
        index,
        `(kid "${kid}") has kty "${String(kty)}", but ${alg} needs a ${want} key.`,
      );
    }
  };

  if (spec.family === 'HMAC') {
    fits('oct');
    const secret = typeof jwk.k === 'string' ? decodeBase64url(jwk.k) : null;
    if (!secret || secret.length < spec.hashBytes) {
      throw keyError(
        index,
        `(kid "${kid}") is an ${alg} secret shorter than ${spec.hashBytes} bytes (the hash output); generate a longer "k".`,
      );
    }
    const key = createSecretKey(secret);
    return { kid, alg, signingKey: key, verifyingKey: key, publicJwk: null };
  }

  if (spec.family === 'RSA' || spec.family === 'RSA-PSS') fits('RSA');
  if (spec.family === 'ECDSA') {
    fits('EC');
    if (jwk.crv !== spec.crv) {
      throw keyError(
        index,
        `(kid "${kid}") is on curve ${String(jwk.crv)}, but ${alg} needs ${spec.crv}.`,
      );
    }
  }
  if (spec.family === 'EdDSA') {
    fits('OKP');
    if (jwk.crv !== 'Ed25519' && jwk.crv !== 'Ed448') {
      throw keyError(index, `(kid "${kid}") must be on curve Ed25519 or Ed448 for EdDSA.`);
    }
  }

  const hasPrivate = typeof jwk.d === 'string';
  let signingKey: KeyObject | null = null;
  let verifyingKey: KeyObject;
  try {
    if (hasPrivate) {
      signingKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
      verifyingKey = createPublicKey(signingKey);
    } else {
      verifyingKey = createPublicKey({ key: jwk as never, format: 'jwk' });
    }
  } catch {
    throw keyError(index, `(kid "${kid}") is not a valid ${String(kty)} JWK.`);
  }
  if (signingKey && !isKeyPair(jwk, alg, signingKey)) {
    // Else every login would answer 200 with a token that nobody, this app included, can verify.
    throw keyError(
      index,
      `(kid "${kid}") has a private part ("d") that does not belong to its public part; export the key pair again.`,
    );
  }
  if (spec.family === 'RSA' || spec.family === 'RSA-PSS') {
    const bits = verifyingKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) {
      throw keyError(
        index,
        `(kid "${kid}") is a ${bits}-bit RSA key; at least 2048 bits are required.`,
      );
    }
  }
  const exported = verifyingKey.export({ format: 'jwk' }) as Record<string, unknown>;
  for (const member of PRIVATE_MEMBERS) delete exported[member];
  const publicJwk = { ...exported, kid, alg, use: 'sig' };
  return { kid, alg, signingKey, verifyingKey, publicJwk };
}

/**
 * Whether the private key signs what the JWK's own public members verify: a file whose `d`
 * (or RSA primes) come from another key pair imports without error otherwise.
 */
function isKeyPair(jwk: TwoFactorJwk, alg: TwoFactorJwsAlgorithm, signingKey: KeyObject): boolean {
  const probe = 'nestjs-rest-2fa: key pair check';
  try {
    const members = { ...(jwk as Record<string, unknown>) };
    for (const member of PRIVATE_MEMBERS) delete members[member];
    const publicKey = createPublicKey({ key: members as never, format: 'jwk' });
    return verifyInput(alg, publicKey, probe, signInput(alg, signingKey, probe));
  } catch {
    return false;
  }
}

/**
 * The signing keys, indexed by `kid`. The first key signs; every key verifies, each with
 * its own algorithm only: a token's `alg` header must equal the algorithm of the key its
 * `kid` names, so the token never chooses how it is checked (RFC 8725 §3.1).
 */
export class KeyRing {
  private readonly byKid: Map<string, RingKey>;
  readonly signer: RingKey;
  /**
   * How another thread can sign the signer's inputs (`signingSpec`): ES256 and EdDSA keys
   * only, whose signatures are made on the event loop otherwise; `null` for the others.
   */
  readonly signerSpec: SigningSpec | null;

  private constructor(readonly keys: readonly RingKey[]) {
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
    this.signer = keys[0];
    const { alg, signingKey } = this.signer;
    this.signerSpec = signingKey ? signingSpec(alg, signingKey) : null;
  }

  /** Imports and checks a JWK list; every problem is a start-up error naming the key. */
  static fromJwks(jwks: readonly TwoFactorJwk[]): KeyRing {
    if (!Array.isArray(jwks) || jwks.length === 0) {
      throw new TwoFactorAuthConfigError('keys', 'must hold at least one JWK (keys[0] signs).');
    }
    const keys = jwks.map((jwk, i) => importKey(jwk, i));
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (seen.has(k.kid)) throw keyError(i, `repeats kid "${k.kid}"; every kid must be unique.`);
      seen.add(k.kid);
    });
    if (!keys[0].signingKey) {
      throw keyError(
        0,
        `(kid "${keys[0].kid}") signs new tokens, so it must hold private material ("d") or be an HMAC secret.`,
      );
    }
    return new KeyRing(keys);
  }

  /** The public JWK Set (RFC 7517): asymmetric keys only, never private or secret members. */
  publicJwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.keys.flatMap((k) => (k.publicJwk ? [k.publicJwk] : [])) };
  }

  /** Signs a JWT with the first key of the ring. */
  sign(typ: string, payload: Record<string, unknown>): string {
    const { alg, signingKey } = this.signer;
    const input = this.signingInput(typ, payload);
    return `${input}.${signInput(alg, signingKey!, input).toString('base64url')}`;
  }

  /**
   * `sign`, with a costly signature (RSA, RSA-PSS, ES384, ES512) computed on libuv's thread pool;
   * the cheap ones (HMAC, ES256, EdDSA) sign at once, as the hop would cost as much.
   */
  async signOffThread(typ: string, payload: Record<string, unknown>): Promise<string> {
    return this.signInputOffThread(this.signingInput(typ, payload));
  }

  /**
   * The signing input (`header.payload`) of a token of the signer, to be signed later:
   * `signInputOffThread` here, or elsewhere with `signerSpec` and `withSignature`.
   */
  signingInput(typ: string, payload: Record<string, unknown>): string {
    const { alg, kid } = this.signer;
    return `${encodeJson({ alg, typ, kid })}.${encodeJson(payload)}`;
  }

  /** `signOffThread` of a `signingInput`. */
  async signInputOffThread(input: string): Promise<string> {
    const { alg, signingKey } = this.signer;
    return this.withSignature(input, await signInputOffThread(alg, signingKey!, input));
  }

  /** The compact JWS of a `signingInput` and its signature. */
  withSignature(input: string, signature: Uint8Array): string {
    return `${input}.${Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('base64url')}`;
  }

  /**
   * Verifies a compact JWS of the expected `typ`; returns `null` for anything that is
   * not exactly that: other segment counts, loose base64url, unknown or extra header
   * members (`jku`, `x5u`, `x5c`, `jwk`, `crit`, …), an unknown `kid`, an `alg` other
   * than the key's, a bad signature, a payload that is not a JSON object.
   */
  verify(token: string, typ: string): VerifiedJws | null {
    const parsed = this.parse(token, typ);
    if (!parsed) return null;
    const { key, input, signature } = parsed;
    return verifyInput(key.alg, key.verifyingKey, input, signature) ? this.verified(parsed) : null;
  }

  /**
   * `verify`, with an asymmetric signature checked on libuv's thread pool (HMAC at once).
   * Everything but the signature is checked first, on the event loop. Never rejects.
   */
  async verifyOffThread(token: string, typ: string): Promise<VerifiedJws | null> {
    const parsed = this.parse(token, typ);
    if (!parsed) return null;
    const { key, input, signature } = parsed;
    const valid = isHmac(key.alg)
      ? verifyInput(key.alg, key.verifyingKey, input, signature)
      : await verifyInputOffThread(key.alg, key.verifyingKey, input, signature);
    return valid ? this.verified(parsed) : null;
  }

  /** The parts of a compact JWS whose header fits `typ` and a key of the ring; else `null`. */
  private parse(token: string, typ: string): ParsedJws | null {
    // Never throws, whatever a caller passes on from a request (`{"token": null}` included).
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (first < 1 || second < 0 || token.indexOf('.', second + 1) !== -1) return null;
    const headerBytes = decodeBase64url(token.slice(0, first));
    const signature = decodeBase64url(token.slice(second + 1));
    if (!headerBytes || !signature || signature.length === 0) return null;

    const header = parseJsonObject(headerBytes);
    if (!header) return null;
    for (const name of Object.keys(header)) if (!ALLOWED_HEADER.has(name)) return null;
    if (header.typ !== typ || typeof header.kid !== 'string') return null;
    const key = this.byKid.get(header.kid);
    if (!key || header.alg !== key.alg) return null;
    return {
      key,
      typ,
      input: token.slice(0, second),
      signature,
      payload: token.slice(first + 1, second),
    };
  }

  /** The result of a parsed JWS whose signature checked out, if its payload is a JSON object. */
  private verified({ key, typ, payload }: ParsedJws): VerifiedJws | null {
    const payloadBytes = decodeBase64url(payload);
    const claims = payloadBytes && parseJsonObject(payloadBytes);
    if (!claims) return null;
    return { header: { alg: key.alg, kid: key.kid, typ }, payload: claims };
  }
}

interface ParsedJws {
  key: RingKey;
  typ: string;
  /** `header.payload`, as signed. */
  input: string;
  signature: Buffer;
  /** The payload segment (base64url). */
  payload: string;
}

function isHmac(
  alg: TwoFactorJwsAlgorithm,
): alg is Extract<TwoFactorJwsAlgorithm, 'HS256' | 'HS384' | 'HS512'> {
  return ALGORITHMS[alg].family === 'HMAC';
}
