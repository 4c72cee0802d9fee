/**
 * The 409 of a change of the account's factors made through a login that ended, or racing a
 * change that applied first (the services' `session` option).
 */
export const CHANGED_MEANWHILE =
  'The account changed while the request ran (a racing change applied first), or its login ended';
