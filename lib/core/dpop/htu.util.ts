/** Characters RFC 3986 §2.3 calls unreserved: their percent-encoded form means the same. */
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * A URL as RFC 9449 §4.3 compares `htu`: scheme and host in lower case, no default port, dot
 * segments resolved, an empty path as `/`, percent-encodings in upper case and unreserved
 * characters decoded (RFC 3986 §6.2.2 and §6.2.3), without query and fragment. `null` for
 * anything that is not an absolute http(s) URL.
 */
export function normaliseHtu(value: string): string | null {
  if (value.length > 4096 || !URL.canParse(value)) return null;
  const url = new URL(value);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username !== '' || url.password !== '') return null;
  const path = url.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
  return `${url.protocol}//${url.host}${path}`;
}
