/**
 * The errors the module's core throws. The core knows no HTTP: each error names what went
 * wrong, and the edge (`lib/http/errors/error-mapping.ts`) turns it into one HTTP answer, in one place.
 * Applications that call the services from their own code may catch these by class.
 */
export abstract class TwoFactorAuthError extends Error {
  /** A stable name of the kind of failure, for logs and `switch` statements. */
  abstract readonly kind:
    | 'invalid-credentials'
    | 'invalid-refresh-token'
    | 'locked'
    | 'not-found'
    | 'conflict'
    | 'invalid-input'
    | 'unavailable'
    | 'invalid-dpop-proof'
    | 'use-dpop-nonce';
}

/** The one failure of a login or re-authentication, whatever factor was wrong or missing. */
export class InvalidCredentialsError extends TwoFactorAuthError {
  readonly kind = 'invalid-credentials';
  constructor() {
    super('Invalid credentials');
  }
}

/** A refresh token that is not a live refresh token (expired, spent, revoked, forged). */
export class InvalidRefreshTokenError extends TwoFactorAuthError {
  readonly kind = 'invalid-refresh-token';
  constructor() {
    super('Invalid or expired refresh token');
  }
}

/** The username is locked by the lockout; try again after `retryAfterSeconds`. */
export class LockedError extends TwoFactorAuthError {
  readonly kind = 'locked';
  constructor(readonly retryAfterSeconds: number) {
    super('Too many failed logins; try again later');
  }
}

/** The account, enrolment or feature named does not exist. */
export class NotFoundError extends TwoFactorAuthError {
  readonly kind = 'not-found';
}

/** The change conflicts with the current state (a taken username, TOTP already on). */
export class ConflictError extends TwoFactorAuthError {
  readonly kind = 'conflict';
}

/** A value that breaks the module's rules (a username or password policy). */
export class InvalidInputError extends TwoFactorAuthError {
  readonly kind = 'invalid-input';
}

/** What is needed to decide cannot be read right now (a database down, a stale view). */
export class UnavailableError extends TwoFactorAuthError {
  readonly kind = 'unavailable';
  constructor(readonly retryAfterSeconds = 1) {
    super('Authentication is temporarily unavailable; retry shortly');
  }
}

/**
 * A DPoP proof (RFC 9449) that is missing where one is needed, malformed, or fails a check
 * (signature, `htm`, `htu`, `iat`, `jti` replay, `ath`, the key a token is bound to). Which
 * check failed is never told to the client.
 */
export class InvalidDpopProofError extends TwoFactorAuthError {
  readonly kind = 'invalid-dpop-proof';
  constructor() {
    super('Invalid DPoP proof');
  }
}

/** A DPoP proof without the current server nonce (RFC 9449 §8): retry with `nonce`. */
export class DpopNonceRequiredError extends TwoFactorAuthError {
  readonly kind = 'use-dpop-nonce';
  constructor(readonly nonce: string) {
    super('A DPoP nonce is required; retry with the one in the DPoP-Nonce header');
  }
}
