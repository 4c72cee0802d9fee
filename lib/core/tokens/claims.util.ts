import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';

/** The registered claims of a token that passed `checkClaims`. */
export interface ClaimSet {
  iss: string;
  sub: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  /** The DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6.1); absent for a Bearer token. */
  jkt?: string;
}

const ID = /^[A-Za-z0-9-]{1,64}$/;
/** An RFC 7638 SHA-256 thumbprint: 32 bytes in base64url. */
const JKT = /^[A-Za-z0-9_-]{43}$/;
/** An account id's string form: printable ASCII (a uuid, an integer, an application's string id). */
const SUB = /^[\x21-\x7e]{1,36}$/;

/**
 * Claim names the module sets or that change what a token means (RFC 7519 §4.1, RFC 7800 `cnf`,
 * RFC 8693 `act`): the `claims` option may not set them.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'cnf',
  'typ',
  'kid',
  'alg',
  'act',
  'may_act',
]);

/**
 * The claims of a verified payload that are not registered ones: the application's own, frozen
 * all the way down. The principal is shared by every request with the same token, so a route
 * that pushed a role into it would grant that role to the requests after it.
 */
export function extraClaims(payload: Record<string, unknown>): Readonly<Record<string, unknown>> {
  const extra: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (!RESERVED_CLAIMS.has(name)) extra[name] = value;
  }
  return deepFreeze(extra);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

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
  const { iss, sub, jti, iat, nbf, exp, aud, cnf } = payload;
  if (iss !== options.issuer) return null;
  if (typeof sub !== 'string' || !SUB.test(sub) || typeof jti !== 'string' || !ID.test(jti))
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
  if (cnf === undefined) return { iss, sub, jti, iat, nbf, exp };
  const jkt = confirmationKey(cnf);
  return jkt === null ? null : { iss, sub, jti, iat, nbf, exp, jkt };
}

/** The `jkt` of a `cnf` claim that holds exactly one, or `null` (a token with another is refused). */
function confirmationKey(cnf: unknown): string | null {
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return null;
  const members = Object.keys(cnf);
  const { jkt } = cnf as { jkt?: unknown };
  return members.length === 1 && typeof jkt === 'string' && JKT.test(jkt) ? jkt : null;
}
