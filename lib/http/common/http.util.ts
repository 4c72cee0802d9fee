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

/** Sets `Retry-After` on `response` when `error` says when to try again (429, 503). */
export function setRetryAfter(response: unknown, error: unknown): void {
  if (error instanceof RetryAfterException) {
    setResponseHeader(response, 'Retry-After', String(error.retryAfterSeconds));
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

/** Value of `WWW-Authenticate` on a refused bearer token (RFC 6750 §3). */
export const BEARER_CHALLENGE = 'Bearer error="invalid_token"';
