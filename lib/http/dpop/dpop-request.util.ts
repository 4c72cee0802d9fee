import { InvalidDpopProofError } from '../../core/errors.js';
import type { DpopProofTarget } from '../../core/dpop/dpop-proof.verifier.js';

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
  const method = request.method ?? '';
  if (publicUrl !== undefined) return { method, url: publicUrl + path };
  const host = typeof request.host === 'string' ? request.host : request.headers.host;
  if (typeof host !== 'string' || host === '') throw new InvalidDpopProofError();
  const scheme = request.protocol === 'https' ? 'https' : 'http';
  return { method, url: `${scheme}://${host}${path}` };
}

/** The request's `DPoP` header as received (a repeated header is never a valid proof). */
export function dpopProofOf(request: DpopHttpRequest): unknown {
  return request.headers.dpop;
}
