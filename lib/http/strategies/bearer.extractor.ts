/** RFC 6750 §2.1: `Bearer` (any case) and a b64token, nothing else. */
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The access token from the `Authorization` header, or `null`. Tokens are read from this
 * header only: never from the query string, a cookie or the body.
 */
export function bearerFromAuthorizationHeader(req: {
  headers: Record<string, string | string[] | undefined>;
}): string | null {
  const value = req.headers.authorization;
  if (typeof value !== 'string') return null;
  const match = BEARER.exec(value);
  return match ? match[1] : null;
}
