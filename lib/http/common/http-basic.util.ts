const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;

/**
 * The user and password of an `Authorization: Basic` header (RFC 7617), or `null` when the
 * header is absent, another scheme, or malformed (no colon, empty user, bad base64).
 */
export function parseBasicCredentials(
  authorization: unknown,
): { user: string; password: string } | null {
  const match = typeof authorization === 'string' ? BASIC.exec(authorization) : null;
  const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  return colon < 1 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** True for a request without a body: none, `null`, an empty string or `{}`. */
export function isEmptyBody(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    body === '' ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
  );
}
