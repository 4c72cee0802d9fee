import {
  BadRequestException,
  ConflictException,
  HttpException,
  HttpStatus,
  NotFoundException,
} from '@nestjs/common';
import {
  TwoFactorAuthError,
  type DpopNonceRequiredError,
  type LockedError,
  type UnavailableError,
} from '../../core/errors.js';
import {
  DpopNonceException,
  invalidCredentials,
  invalidDpopProof,
  invalidRefreshToken,
  RetryAfterException,
} from '../common/http.util.js';

/**
 * The one place where the core's errors become HTTP answers. Every failure of a login is the
 * same `401` body; a lock is `429` and an unavailable database `503`, both with `Retry-After`.
 * A bad DPoP proof on a token request is `400` `invalid_dpop_proof` (RFC 9449 §5), a missing
 * nonce `400` `use_dpop_nonce` with a `DPoP-Nonce` header.
 */
export function toHttpException(error: TwoFactorAuthError): HttpException {
  switch (error.kind) {
    case 'invalid-credentials':
      return invalidCredentials();
    case 'invalid-refresh-token':
      return invalidRefreshToken();
    case 'locked':
      return new RetryAfterException(
        HttpStatus.TOO_MANY_REQUESTS,
        error.message,
        (error as LockedError).retryAfterSeconds,
      );
    case 'unavailable':
      return new RetryAfterException(
        HttpStatus.SERVICE_UNAVAILABLE,
        error.message,
        (error as UnavailableError).retryAfterSeconds,
      );
    case 'not-found':
      return new NotFoundException(error.message);
    case 'conflict':
      return new ConflictException(error.message);
    case 'invalid-input':
      return new BadRequestException(error.message);
    case 'invalid-dpop-proof':
      return invalidDpopProof();
    case 'use-dpop-nonce':
      return new DpopNonceException((error as DpopNonceRequiredError).nonce);
  }
}

/** `error` as an HTTP exception when it is one of the core's errors; anything else unchanged. */
export function asHttpError(error: unknown): unknown {
  return error instanceof TwoFactorAuthError ? toHttpException(error) : error;
}
