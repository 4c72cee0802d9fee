import { InvalidDpopProofError } from '../../core/errors.js';
import type { DpopProofTarget } from '../../core/dpop/dpop-proof.verifier.js';

/** RFC 3986 authority without userinfo: a name or an IP literal, and an optional port. */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$/;

/** What the DPoP checks read of a request; Express and Fastify requests both fit. */
export interface DpopHttpRequest {
  method?: string;
  headers: Record<string, string | string[] | undefined>;
  /** `http` or `https`; behind a proxy the application trusts, its `X-Forwarded-Proto`. */
  protocol?: string;
  /** Host and port the client addressed; behind a trusted proxy, its `X-Forwarded-Host`. */
  host?: string;
  /** The path and query as received (Express, Fastify); `url` otherwise. */
  originalUrl?: string;
  url?: string;
}

/**
 * The method and URL a proof of `request` must name (RFC 9449 §4.3). The URL is `publicUrl`
 * followed by the request's path when the application set it (`dpop.publicUrl`: a proxy that
 * rewrites the address), else the request's scheme, host and path as the HTTP adapter reports
 * them, which follow `X-Forwarded-*` only behind a proxy the application trusts.
 * @throws InvalidDpopProofError when the request has no host to compare with.
 */
export function dpopTarget(
  request: DpopHttpRequest,
  publicUrl: string | undefined,
): Pick<DpopProofTarget, 'method' | 'url'> {
  const raw = request.originalUrl ?? request.url ?? '/';
  const path = raw.split(/[?#]/, 1)[0];
  // An absolute-form target (`GET http://host/path`) or anything else odd: no URL to compare.
  if (!path.startsWith('/') || path.includes('\\')) throw new InvalidDpopProofError();
  const method = request.method ?? '';
  if (publicUrl !== undefined) return { method, url: publicUrl + path };
  const host = typeof request.host === 'string' ? request.host : request.headers.host;
  // Only a host and port: a `/`, `?`, `#` or `\` in `Host` (or a trusted `X-Forwarded-Host`)
  // would move the compared path, so that a proof of one route passed on another.
  if (typeof host !== 'string' || !AUTHORITY.test(host)) throw new InvalidDpopProofError();
  const scheme = request.protocol === 'https' ? 'https' : 'http';
  return { method, url: `${scheme}://${host}${path}` };
}

/** The request's `DPoP` header as received (a repeated header is never a valid proof). */
export function dpopProofOf(request: DpopHttpRequest): unknown {
  return request.headers.dpop;
}
