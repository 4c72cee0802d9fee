import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';

/** The registered claims of a token that passed `checkClaims`. */
export interface ClaimSet {
  iss: string;
  sub: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

const ID = /^[A-Za-z0-9-]{1,64}$/;

function numericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * RFC 7519 / RFC 8725 claim checks: `iss`, `sub`, `jti`, `iat`, `nbf` and `exp` must all be
 * present with the right types; `iss` (and `aud`, when configured) must match; the token must
 * be valid now, within `clockTolerance`; `iat` may not lie in the future.
 */
export function checkClaims(
  payload: Record<string, unknown>,
  options: Pick<ResolvedTwoFactorAuthOptions, 'issuer' | 'audience' | 'clockTolerance'>,
  nowSeconds = Math.floor(Date.now() / 1000),
): ClaimSet | null {
  const { iss, sub, jti, iat, nbf, exp, aud } = payload;
  if (iss !== options.issuer) return null;
  if (typeof sub !== 'string' || !ID.test(sub) || typeof jti !== 'string' || !ID.test(jti))
    return null;
  if (!numericDate(iat) || !numericDate(nbf) || !numericDate(exp)) return null;
  const tolerance = options.clockTolerance;
  if (exp + tolerance <= nowSeconds) return null;
  if (nbf - tolerance > nowSeconds || iat - tolerance > nowSeconds) return null;
  if (nbf > exp || iat > exp) return null;
  if (options.audience !== undefined) {
    const ok = Array.isArray(aud) ? aud.includes(options.audience) : aud === options.audience;
    if (!ok) return null;
  } else if (aud !== undefined) {
    return null;
  }
  return { iss, sub, jti, iat, nbf, exp };
}
