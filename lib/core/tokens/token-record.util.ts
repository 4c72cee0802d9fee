import type { DataSource } from 'typeorm';
import type { Account } from '../accounts/account.entity.js';
import type { ClaimSet } from './claims.util.js';
import { IssuedToken, type IssuedTokenType } from './issued-token.entity.js';

/** A token record with its account, as one query returns them. */
export type LiveRecord = IssuedToken & { account: Account };

/**
 * The record of a token whose signature and claims already checked out, if it is still live:
 * of the right type, the same `sub`, `kid` and `exp` as the token, not revoked, of an enabled
 * account whose cut-off (`tokensValidAfter`) the token does not precede. One query; `null`
 * for anything else. Database errors propagate (callers answer them with 503).
 */
export async function findLiveRecord(
  dataSource: DataSource,
  claims: ClaimSet,
  kid: string,
  type: IssuedTokenType,
): Promise<LiveRecord | null> {
  const row = (await dataSource.getRepository(IssuedToken).findOne({
    where: { jti: claims.jti },
    relations: { account: true },
  })) as LiveRecord | null;
  const account = row?.account;
  const live =
    row !== null &&
    account !== undefined &&
    account !== null &&
    row.type === type &&
    row.sub === claims.sub &&
    row.kid === kid &&
    row.exp === claims.exp &&
    row.revokedAt === null &&
    !account.disabled &&
    claims.iat >= Math.floor(account.tokensValidAfter / 1000);
  return live ? row : null;
}
