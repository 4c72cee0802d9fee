import { CompactSign, importJWK, type CompactJWSHeaderParameters } from 'jose';
import { createHmac, createPrivateKey, randomUUID, sign } from 'node:crypto';
import { IssuedToken, type TwoFactorJwk } from '../../lib/index.js';
import type { RunningApp } from './sample-app.harness.js';

/** base64url of a JSON value (objects, arrays, numbers) or of a string's UTF-8 bytes, as is. */
export function b64(value: unknown): string {
  const bytes = Buffer.isBuffer(value)
    ? value
    : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
  return bytes.toString('base64url');
}

/** A compact JWS assembled by hand: any header, any payload, any signature bytes. */
export function assemble(header: unknown, payload: unknown, signature: Buffer | string): string {
  const sig = typeof signature === 'string' ? signature : signature.toString('base64url');
  return `${b64(header)}.${b64(payload)}.${sig}`;
}

/** A JWS whose MAC is HMAC-`hash` keyed with `secret`, whatever `alg` the header claims. */
export function hmacJws(
  secret: Buffer | string,
  header: Record<string, unknown>,
  payload: unknown,
  hash: 'sha256' | 'sha384' | 'sha512' = 'sha256',
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/**
 * Signs `payload` with `jwk` (private or secret) through jose's CompactSign, under exactly
 * the protected header given (jose adds nothing). `crit` names the extensions jose may let
 * through when the header lists them.
 */
export async function signJws(
  jwk: TwoFactorJwk,
  header: Record<string, unknown>,
  payload: unknown,
  crit?: Record<string, boolean>,
): Promise<string> {
  const key = await importJWK(jwk as never, String(header.alg ?? jwk.alg));
  const bytes = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  return new CompactSign(bytes)
    .setProtectedHeader(header as CompactJWSHeaderParameters)
    .sign(key, crit ? { crit } : undefined);
}

/** A P1363 (r||s) ECDSA signature re-encoded as ASN.1 DER. */
export function p1363ToDer(signature: Buffer): Buffer {
  const half = signature.length / 2;
  const integer = (bytes: Buffer) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let v = bytes.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([
    integer(signature.subarray(0, half)),
    integer(signature.subarray(half)),
  ]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

export interface ForgeOptions {
  /** The running app whose database gets the records. */
  running: RunningApp;
  /** The app's real signing key (private JWK with kid and alg). */
  jwk: TwoFactorJwk;
  issuer: string;
  audience?: string;
}

/**
 * Mints tokens signed with the app's REAL key, and writes the `IssuedToken` record the app
 * expects for them, so that a forged token differs from a good one only in the one property
 * a test changes. `forge.sign(forge.claims(...))` with nothing changed must be accepted: every
 * suite checks that positive control, so a refusal can be blamed on the change alone.
 */
export class TokenForge {
  constructor(private readonly options: ForgeOptions) {}

  get kid(): string {
    return this.options.jwk.kid;
  }

  get alg(): string {
    return this.options.jwk.alg;
  }

  /** The header the app itself writes on access tokens. */
  header(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { alg: this.alg, typ: 'at+jwt', kid: this.kid, ...extra };
  }

  /**
   * Records a token of `accountId` (type access unless told), issued at `iat` (default now)
   * for `lifetime` seconds (default 15 minutes), and returns its claims exactly as the app
   * would sign them.
   */
  async claims(
    accountId: string,
    {
      type = 'access',
      lifetime = 900,
      iat = Math.floor(Date.now() / 1000),
    }: { type?: 'access' | 'refresh'; lifetime?: number; iat?: number } = {},
  ): Promise<Record<string, unknown>> {
    const claims: Record<string, unknown> = {
      iss: this.options.issuer,
      sub: accountId,
      ...(this.options.audience ? { aud: this.options.audience } : {}),
      iat,
      nbf: iat,
      exp: iat + lifetime,
      jti: randomUUID(),
    };
    await this.record(claims, type);
    return claims;
  }

  /** Writes (or rewrites) the record of `claims`, with the numeric claims it can hold. */
  async record(claims: Record<string, unknown>, type: 'access' | 'refresh' = 'access') {
    const now = Math.floor(Date.now() / 1000);
    const int = (v: unknown, fallback: number) =>
      typeof v === 'number' && Number.isSafeInteger(v) ? v : fallback;
    const repo = this.options.running.dataSource.getRepository(IssuedToken);
    await repo.save(
      repo.create({
        jti: String(claims.jti),
        accountId: String(claims.sub),
        type,
        iss: this.options.issuer,
        sub: String(claims.sub),
        aud: this.options.audience ?? null,
        kid: this.kid,
        iat: int(claims.iat, now),
        nbf: int(claims.nbf, now),
        exp: int(claims.exp, now + 900),
        familyId: randomUUID(),
        parentJti: null,
        replacedBy: null,
        revokedAt: null,
        revokedReason: null,
        createdAt: Date.now(),
      }),
    );
  }

  /**
   * Signs raw segments with the real (asymmetric) key through node:crypto, for inputs jose
   * would refuse to produce: a header that is not JSON, an empty `crit`, a hash other than the
   * key's algorithm. ECDSA signatures are r||s; `pss` selects RSA-PSS padding.
   */
  signSegments(
    header: string,
    payload: string,
    { hash = 'sha256', pss = false }: { hash?: string; pss?: boolean } = {},
  ): string {
    const key = createPrivateKey({ key: this.options.jwk as never, format: 'jwk' });
    const input = `${header}.${payload}`;
    const signature = sign(hash, Buffer.from(input), {
      key,
      dsaEncoding: 'ieee-p1363',
      ...(pss ? { padding: 6, saltLength: 32 } : {}),
    });
    return `${input}.${signature.toString('base64url')}`;
  }

  /** Signs with the real key under `header` (default: the app's own header). */
  sign(
    payload: unknown,
    header: Record<string, unknown> = this.header(),
    crit?: Record<string, boolean>,
  ): Promise<string> {
    return signJws(this.options.jwk, header, payload, crit);
  }
}
