/** RFC 6750 §2.1 / RFC 9449 §7.1: `Bearer` or `DPoP` (any case) and a b64token, nothing else. */
const AUTHORIZATION = /^(bearer|dpop) +([A-Za-z0-9\-._~+/]+=*) *$/i;

type HeaderBag = { headers: Record<string, string | string[] | undefined> };

/** The scheme and token of the `Authorization` header, or `null`. */
export function authorizationOf(
  req: HeaderBag,
): { scheme: 'Bearer' | 'DPoP'; token: string } | null {
  const value = req.headers.authorization;
  if (typeof value !== 'string') return null;
  const match = AUTHORIZATION.exec(value);
  if (!match) return null;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

/**
 * The access token from the `Authorization` header (`Bearer` or `DPoP` scheme), or `null`.
 * Tokens are read from this header only: never from the query string, a cookie or the body.
 * Whether the scheme fits the token (a DPoP-bound token needs `DPoP`) is decided afterwards.
 */
export function bearerFromAuthorizationHeader(req: HeaderBag): string | null {
  return authorizationOf(req)?.token ?? null;
}
