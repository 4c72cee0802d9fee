/** Longest username accepted by default, in characters: the longest email address (RFC 5321). */
export const USERNAME_MAX_LENGTH = 254;

/**
 * Control and format characters, which no username may contain: the invisible ones (zero-width
 * space and joiners, soft hyphen, byte-order mark) and the direction overrides would let two
 * names that look the same be two accounts.
 */
const CONTROL = /[\p{Cc}\p{Cf}]/u;

/** The display form (trimmed, NFC) and the comparison key (also lower case) of a username. */
export interface NormalisedUsername {
  display: string;
  key: string;
}

/** The rules a new or renamed username must meet (`usernames` option, resolved). */
export interface UsernamePolicy {
  minLength: number;
  maxLength: number;
  /** The application's own rule: a message saying what is wrong, or `null`. */
  validate?: (username: string) => string | null;
}

/**
 * Normalises a username so that `" Alice"`, `"alice"` and `"ALICE"` (and every Unicode
 * spelling of the same characters) are one account, and one lockout counter. An application
 * that keeps its own users table stores `key` in its login column.
 */
export function normaliseUsername(raw: string): NormalisedUsername {
  const display = raw.trim().normalize('NFC');
  return { display, key: display.toLowerCase().normalize('NFC') };
}

/**
 * Why a username cannot be registered, or `null` when it can. Lengths count characters. A `:`
 * is allowed (it is valid in an email address); such a name logs in with the JSON body only,
 * since HTTP Basic separates the name from the password with it.
 */
export function usernameProblem(display: string, policy: UsernamePolicy): string | null {
  const length = [...display].length;
  if (length < policy.minLength || length > policy.maxLength) {
    return `username must be ${policy.minLength} to ${policy.maxLength} characters long`;
  }
  if (CONTROL.test(display)) {
    return 'username must not contain control or invisible formatting characters';
  }
  return policy.validate?.(display) ?? null;
}
