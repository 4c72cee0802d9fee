/** What `/auth/token` and `/auth/refresh` return (RFC 6749 §5.1 shape). */
export interface TokenPair {
  access_token: string;
  /** `DPoP` when the tokens are bound to the key of the request's DPoP proof (RFC 9449). */
  token_type: 'Bearer' | 'DPoP';
  /** Seconds until the access token expires. */
  expires_in: number;
  refresh_token: string;
  /** Seconds until the refresh token expires. */
  refresh_expires_in: number;
}

/**
 * The authenticated principal a guarded route sees (`@CurrentAccount()`, `req.user`). Type the
 * application's claims with the parameter: `@CurrentAccount() me: AuthenticatedAccount<{ roles: string[] }>`.
 */
export interface AuthenticatedAccount<TClaims extends object = Record<string, unknown>> {
  /** Account id (the token's `sub`). */
  id: string;
  /**
   * The login name when this instance first saw the token (a rename shows in the principal of
   * tokens issued after it; `id` never changes).
   */
  username: string;
  /** Id of the access token used. */
  jti: string;
  /** Issued-at and expiry of the access token (seconds since the epoch). */
  iat: number;
  exp: number;
  /** The login the token descends from; revoking it revokes the whole family. */
  familyId: string;
  /** The application's claims in the token (the `claims` option), read without any lookup. */
  claims: Readonly<TClaims>;
  /**
   * For a DPoP-bound token (RFC 9449), the thumbprint of the client's key (`cnf.jkt`): every
   * request with the token was proven by that key. Absent for a Bearer token.
   */
  jkt?: string;
}

/**
 * The login a change comes through: the request's principal (`@CurrentAccount()`), or any
 * object with its account `id` and `familyId`.
 */
export type ChangeSession = Pick<AuthenticatedAccount, 'id' | 'familyId'>;

/** Options of the services' changes to how an account logs in (password, key, TOTP). */
export interface AccountChangeOptions {
  /**
   * The request's principal when the account's owner makes the change on a guarded route
   * (`@CurrentAccount()`). The change then applies only while the login behind that token is
   * live (not logged out, and no change of the account's factors nor revoke-all since it
   * began), in one step with the revocation of every token of the account: of changes racing
   * through one account's logins (a double submit, or someone holding the factors racing the
   * owner), one applies and the others throw `ConflictError` (409) having changed nothing.
   * Leave it out for a change an administrator makes.
   */
  session?: ChangeSession;
}

/** How a token pair is issued. */
export interface IssueOptions {
  /**
   * Bind the pair to this DPoP key thumbprint (RFC 9449): the access token carries `cnf.jkt`
   * and works only with proofs by that key; so does the refresh token.
   */
  jkt?: string;
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
