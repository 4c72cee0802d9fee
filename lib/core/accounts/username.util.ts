/** Longest username accepted, in characters, before and after normalisation. */
export const USERNAME_MAX_LENGTH = 64;

/** Control characters, which no username may contain. */
const CONTROL = /\p{Cc}/u;

/** The display form (trimmed, NFC) and the comparison key (also lower case) of a username. */
export interface NormalisedUsername {
  display: string;
  key: string;
}

/**
 * Normalises a username so that `" Alice"`, `"alice"` and `"ALICE"` (and every Unicode
 * spelling of the same characters) are one account, and one lockout counter.
 */
export function normaliseUsername(raw: string): NormalisedUsername {
  const display = raw.trim().normalize('NFC');
  return { display, key: display.toLowerCase().normalize('NFC') };
}

/** Why a username cannot be registered, or `null` when it can. */
export function usernameProblem(display: string): string | null {
  const length = [...display].length;
  if (length < 3 || length > USERNAME_MAX_LENGTH) {
    return `username must be 3 to ${USERNAME_MAX_LENGTH} characters long`;
  }
  if (CONTROL.test(display)) return 'username must not contain control characters';
  if (display.includes(':'))
    return 'username must not contain ":" (it separates HTTP Basic credentials)';
  return null;
}
