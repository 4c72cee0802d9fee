/** JOSE `typ` header of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** JOSE `typ` header of refresh tokens; never accepted where an access token is expected. */
export const REFRESH_TOKEN_TYP = 'rt+jwt';
