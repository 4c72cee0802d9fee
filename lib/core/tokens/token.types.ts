/** What `/auth/token` and `/auth/refresh` return (RFC 6749 §5.1 shape). */
export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  /** Seconds until the access token expires. */
  expires_in: number;
  refresh_token: string;
  /** Seconds until the refresh token expires. */
  refresh_expires_in: number;
}

/** The authenticated principal a guarded route sees (`@CurrentAccount()`, `req.user`). */
export interface AuthenticatedAccount {
  /** Account id (the token's `sub`). */
  id: string;
  username: string;
  /** Id of the access token used. */
  jti: string;
  /** Issued-at and expiry of the access token (seconds since the epoch). */
  iat: number;
  exp: number;
  /** The login the token descends from; revoking it revokes the whole family. */
  familyId: string;
}

/** Why a token was revoked; stored with the record. */
export type RevocationReason =
  | 'logout'
  | 'revoked'
  | 'rotated'
  | 'reuse-detected'
  | 'password-changed'
  | 'secret-key-rotated'
  | 'secret-key-revoked'
  | 'account-disabled'
  | 'second-factor-changed'
  | 'account-deleted'
  | 'withdrawn'
  | 'admin';
