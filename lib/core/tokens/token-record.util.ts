import type { DataSource } from 'typeorm';
import type { AccountRecord, AccountStore, AccountStateRow } from '../accounts/account.store.js';
import type { ClaimSet } from './claims.util.js';
import { IssuedToken, type IssuedTokenType } from './issued-token.entity.js';

/** A live token record and its account, as one query returns them. */
export interface LiveRecord {
  record: IssuedToken;
  account: AccountRecord;
}

/**
 * The record of a token whose signature and claims already checked out, if it is still live:
 * of the right type, the same `sub`, `kid` and `exp` as the token, not revoked, of an enabled
 * account whose cut-off (`tokensValidAfter`) the token does not precede. One query; `null`
 * for anything else. Database errors propagate (callers answer them with 503).
 */
export async function findLiveRecord(
  dataSource: DataSource,
  accounts: AccountStore,
  claims: ClaimSet,
  kid: string,
  type: IssuedTokenType,
): Promise<LiveRecord | null> {
  const record = await dataSource.getRepository(IssuedToken).findOne({
    where: { jti: claims.jti },
    relations: accounts.relations,
  });
  const account = accounts.fromState(record?.account as AccountStateRow | undefined);
  const live =
    record !== null &&
    account !== null &&
    record.type === type &&
    record.sub === claims.sub &&
    record.kid === kid &&
    record.exp === claims.exp &&
    record.revokedAt === null &&
    !account.disabled &&
    claims.iat >= Math.floor(account.tokensValidAfter / 1000);
  return live ? { record, account } : null;
}
