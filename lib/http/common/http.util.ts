import { HttpException, HttpStatus } from '@nestjs/common';

/** Sets a response header on Express (`setHeader`) and Fastify (`header`) alike. */
export function setResponseHeader(response: unknown, name: string, value: string): void {
  const res = response as {
    header?: (n: string, v: string) => unknown;
    setHeader?: (n: string, v: string) => unknown;
    raw?: unknown;
  };
  if (typeof res.setHeader === 'function') res.setHeader(name, value);
  else if (typeof res.header === 'function') res.header(name, value);
}

/** An HTTP error that tells the client when to try again (429, 503). */
export class RetryAfterException extends HttpException {
  constructor(
    status: HttpStatus.TOO_MANY_REQUESTS | HttpStatus.SERVICE_UNAVAILABLE,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(
      {
        statusCode: status,
        message,
        error:
          status === HttpStatus.TOO_MANY_REQUESTS ? 'Too Many Requests' : 'Service Unavailable',
      },
      status,
    );
  }
}

/** A token request whose DPoP proof lacks the server's current nonce (RFC 9449 §8). */
export class DpopNonceException extends HttpException {
  constructor(readonly nonce: string) {
    super(
      {
        statusCode: 400,
        message: 'A DPoP nonce is required; retry with the one in the DPoP-Nonce header',
        error: 'use_dpop_nonce',
      },
      HttpStatus.BAD_REQUEST,
    );
  }
}

/**
 * Sets the headers an error answer carries: `Retry-After` when it says when to try again (429,
 * 503), `DPoP-Nonce` when it asks for a nonce.
 */
export function setErrorHeaders(response: unknown, error: unknown): void {
  if (error instanceof RetryAfterException) {
    setResponseHeader(response, 'Retry-After', String(error.retryAfterSeconds));
  } else if (error instanceof DpopNonceException) {
    setResponseHeader(response, 'DPoP-Nonce', error.nonce);
  }
}

/** The one answer to every failed login, whatever failed. */
export const INVALID_CREDENTIALS = 'Invalid credentials';

export function invalidCredentials(): HttpException {
  return new HttpException(
    { statusCode: 401, message: INVALID_CREDENTIALS, error: 'Unauthorized' },
    HttpStatus.UNAUTHORIZED,
  );
}

/** The one answer to every refused access token, whatever check failed. */
export function invalidToken(): HttpException {
  return new HttpException(
    { statusCode: 401, message: 'Invalid or missing access token', error: 'Unauthorized' },
    HttpStatus.UNAUTHORIZED,
  );
}

/** The one answer to every refused refresh token. */
export function invalidRefreshToken(): HttpException {
  return new HttpException(
    { statusCode: 401, message: 'Invalid or expired refresh token', error: 'Unauthorized' },
    HttpStatus.UNAUTHORIZED,
  );
}

/** The answer to a token request with an invalid DPoP proof (RFC 9449 §5). */
export function invalidDpopProof(): HttpException {
  return new HttpException(
    { statusCode: 400, message: 'Invalid DPoP proof', error: 'invalid_dpop_proof' },
    HttpStatus.BAD_REQUEST,
  );
}

/** Value of `WWW-Authenticate` on a refused bearer token (RFC 6750 §3). */
export const BEARER_CHALLENGE = 'Bearer error="invalid_token"';

/** Value of `WWW-Authenticate` on a refused DPoP request (RFC 9449 §7.1). */
export function dpopChallenge(error: string, algs: string): string {
  return `DPoP error="${error}", algs="${algs}"`;
}
