/**
 * Audit events, emitted through `@nestjs/event-emitter` as `two-factor.<name>` (subscribe with
 * `@OnEvent('two-factor.**')`). Payloads carry ids and reasons only: never a password, secret
 * key, TOTP secret, code or token.
 */
export interface TwoFactorEventMap {
  /** A login passed every factor. */
  'login.succeeded': { accountId: string; secondFactor: 'secret-key' | 'totp' | 'recovery-code' };
  /** A login failed; `reason` is for logs only, the client never sees it. */
  'login.failed': {
    /**
     * HMAC-SHA-256 of the normalised username under a server key (the name itself may be a
     * mistyped password; an unkeyed hash would be reversed by a dictionary).
     */
    usernameHash: string;
    accountId: string | null;
    reason:
      | 'unknown-account'
      | 'bad-password'
      | 'bad-second-factor'
      | 'disabled'
      | 'locked'
      | 'replayed-code';
  };
  'account.locked': { usernameHash: string; seconds: number };
  'token.issued': { accountId: string; jti: string; familyId: string };
  'token.refreshed': { accountId: string; jti: string; familyId: string };
  'token.revoked': { jtis: string[]; accountId: string | null; reason: string };
  'refresh.reused': { accountId: string; familyId: string; jti: string };
  'secret-key.rotated': { accountId: string };
  'password.changed': { accountId: string };
  /** An account of the module's own store was created, with its secret key. */
  'account.created': { accountId: string };
  /** An account of the application's own users table got its second factor (`enrol`). */
  'account.enrolled': { accountId: string };
  /** The account's login name changed. */
  'account.renamed': { accountId: string };
  'account.disabled': { accountId: string };
  'account.enabled': { accountId: string };
  /** The account and every row of the module about it are gone; its tokens are refused. */
  'account.deleted': { accountId: string };
  'totp.enabled': { accountId: string };
  'totp.disabled': { accountId: string };
  'recovery-code.used': { accountId: string };
}

/** Names of the audit events, without the `two-factor.` prefix. */
export type TwoFactorEventName = keyof TwoFactorEventMap;

/** Prefix of every event name. */
export const TWO_FACTOR_EVENT_PREFIX = 'two-factor.';
