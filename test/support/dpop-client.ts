import { createHash, randomUUID } from 'node:crypto';
import * as DPoP from 'dpop';
import { CompactSign, exportJWK, type CompactJWSHeaderParameters, type JWK } from 'jose';
import type { HttpTarget } from './race.js';

/**
 * The client side of DPoP (RFC 9449) for the e2e suites. Good proofs come from panva's `dpop`,
 * a client written independently of the module; proofs with one thing wrong are built by
 * `craftProof` (jose), whose untouched output must be accepted too, so that a refusal can be
 * blamed on the one change a test makes.
 */

export type DpopKeyPair = DPoP.KeyPair;

/** A fresh client key. Extractable, so that a test can leak its private members on purpose. */
export function newDpopKey(alg: DPoP.JWSAlgorithm = 'ES256'): Promise<DpopKeyPair> {
  return DPoP.generateKeyPair(alg, { extractable: true });
}

/** The RFC 7638 SHA-256 thumbprint of the key, as the client computes it (`cnf.jkt`). */
export function thumbprintOf(key: DpopKeyPair): Promise<string> {
  return DPoP.calculateThumbprint(key.publicKey);
}

/** `ath`: base64url(SHA-256(access token)). */
export function athOf(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The JWS `alg` a key signs with: the one `dpop` would write (EdDSA for Ed25519). */
export function algOf(key: DpopKeyPair): string {
  const algorithm = key.privateKey.algorithm as { name: string; namedCurve?: string };
  switch (algorithm.name) {
    case 'ECDSA':
      return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[algorithm.namedCurve!]!;
    case 'RSA-PSS':
      return 'PS256';
    case 'RSASSA-PKCS1-v1_5':
      return 'RS256';
    case 'Ed25519':
      return 'EdDSA';
    default:
      throw new Error(`No JWS algorithm for a ${algorithm.name} key`);
  }
}

/** The public members of the key, as a proof's `jwk` header carries them. */
export async function publicJwkOf(key: DpopKeyPair): Promise<JWK> {
  const { kty, crv, x, y, n, e } = await exportJWK(key.publicKey);
  return withoutUndefined({ kty, crv, x, y, n, e });
}

/** The private JWK of the key (`d` and, for RSA, the CRT members). */
export function privateJwkOf(key: DpopKeyPair): Promise<JWK> {
  return exportJWK(key.privateKey);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export interface CraftedProof {
  htm: string;
  htu: string;
  /** Sets `ath` to the hash of this token. */
  accessToken?: string;
  nonce?: string;
  /** Header members replacing the defaults (`typ`, `alg`, `jwk`); `undefined` removes one. */
  header?: Record<string, unknown>;
  /** Claims replacing the defaults (`jti`, `iat`, `htm`, `htu`, `ath`, `nonce`); `undefined` removes one. */
  claims?: Record<string, unknown>;
  /** Signs with this key instead, while the header still names `key`. */
  signWith?: DpopKeyPair;
}

/** The header and claims of a proof by `key`, with the overrides of `spec` applied. */
export async function proofParts(
  key: DpopKeyPair,
  spec: CraftedProof,
): Promise<{ header: Record<string, unknown>; claims: Record<string, unknown> }> {
  const header = withoutUndefined({
    typ: 'dpop+jwt',
    alg: algOf(key),
    jwk: await publicJwkOf(key),
    ...spec.header,
  });
  const claims = withoutUndefined({
    jti: randomUUID(),
    iat: nowSeconds(),
    htm: spec.htm,
    htu: spec.htu,
    ath: spec.accessToken === undefined ? undefined : athOf(spec.accessToken),
    nonce: spec.nonce,
    ...spec.claims,
  });
  return { header, claims };
}

/** A proof signed (through jose) with exactly the header and claims `proofParts` gives. */
export async function craftProof(key: DpopKeyPair, spec: CraftedProof): Promise<string> {
  const { header, claims } = await proofParts(key, spec);
  return new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader(header as CompactJWSHeaderParameters)
    .sign((spec.signWith ?? key).privateKey);
}

export interface DpopTarget extends HttpTarget {
  url: string;
}

type Credentials = { username: string; password: string; secretKey: string };

/**
 * One client holding one key, talking to `target` with proofs from panva's `dpop`. `base` is
 * the URL the client addresses (its `htu` prefix): the app's own URL unless a proxy sits
 * between; `headers` go with every request (a `Host`, the headers a proxy adds).
 */
export class DpopClient {
  constructor(
    readonly target: DpopTarget,
    readonly key: DpopKeyPair,
    readonly base: string = target.url,
    readonly headers: Record<string, string> = {},
  ) {}

  private http() {
    const agent = this.target.http();
    return {
      get: (path: string) => agent.get(path).set(this.headers),
      post: (path: string) => agent.post(path).set(this.headers),
      delete: (path: string) => agent.delete(path).set(this.headers),
    };
  }

  /** The `htu` of a request to `path` (its query left out). */
  htu(path: string): string {
    return this.base + path.split('?')[0];
  }

  proof(method: string, path: string, accessToken?: string, nonce?: string): Promise<string> {
    return DPoP.generateProof(this.key, this.htu(path), method, nonce, accessToken);
  }

  /** POST /auth/token with the JSON body and a proof. */
  async login(account: Credentials, nonce?: string) {
    const { username, password, secretKey } = account;
    return this.http()
      .post('/auth/token')
      .set('DPoP', await this.proof('POST', '/auth/token', undefined, nonce))
      .send({ username, password, secretKey });
  }

  /** POST /auth/refresh with a proof. */
  async refresh(refreshToken: string, nonce?: string) {
    return this.http()
      .post('/auth/refresh')
      .set('DPoP', await this.proof('POST', '/auth/refresh', undefined, nonce))
      .send({ refresh_token: refreshToken });
  }

  /** GET `path` with `Authorization: DPoP <token>` and a proof for that request. */
  async get(path: string, accessToken: string, nonce?: string) {
    return this.http()
      .get(path)
      .set('Authorization', `DPoP ${accessToken}`)
      .set('DPoP', await this.proof('GET', path, accessToken, nonce));
  }

  /** `method` `path` with `Authorization: DPoP <token>`, a proof and an optional JSON body. */
  async send(method: 'post' | 'delete', path: string, accessToken: string, body?: object) {
    const req = this.http()
      [method](path)
      .set('Authorization', `DPoP ${accessToken}`)
      .set('DPoP', await this.proof(method.toUpperCase(), path, accessToken));
    return body === undefined ? req : req.send(body);
  }
}

/**
 * Sets the `DPoP` header of `req`. An array sends one header line per proof: superagent does so
 * for any header, though its types admit arrays for `Cookie` only.
 */
export function withProof<T extends { set(field: string, val: string): T }>(
  req: T,
  proof: string | string[],
): T {
  return req.set('DPoP', proof as string);
}
