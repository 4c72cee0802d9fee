/** Passport name of the credentials strategy (username + password + second factor). */
export const TWO_FACTOR_STRATEGY = 'two-factor';

/** Passport name of the access-token strategy. */
export const JWT_TWO_FACTOR_STRATEGY = 'jwt-two-factor';
