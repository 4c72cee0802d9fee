/**
 * TokenService on each real database, called directly: rotation spends a refresh token once,
 * re-use kills the family, and a logout or revoke-all racing a refresh always wins (many
 * trials with random interleavings), also against a login whose factors were checked before a
 * revoke-all.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { IsNull } from 'typeorm';
import { createModuleFixture, type ModuleFixture } from '../../../test/support/module-fixture.js';
import { databases } from '../../../test/support/servers.js';
import { AccountService } from '../../flows/accounts/account.service.js';
import { IssuedToken } from './issued-token.entity.js';
import { TokenService } from './token.service.js';
import type { TokenPair } from './token.types.js';
import { asHttpError } from '../../http/errors/error-mapping.js';

const TRIALS = 25;

function statusOf(error: unknown): number | undefined {
  const mapped = asHttpError(error) as { getStatus?: () => number };
  return mapped.getStatus?.();
}

async function settle<T>(promise: Promise<T>): Promise<T | number | undefined> {
  try {
    return await promise;
  } catch (error) {
    return statusOf(error);
  }
}

const jtiOf = (token: string) => decodeJwt(token).jti as string;
const isPair = (value: unknown): value is TokenPair =>
  typeof value === 'object' && value !== null && 'refresh_token' in value;

describe.each(databases())('TokenService on %s', (kind) => {
  let fixture: ModuleFixture;
  let tokens: TokenService;
  let accounts: AccountService;
  let n = 0;

  beforeAll(async () => {
    fixture = await createModuleFixture(kind);
    tokens = fixture.get(TokenService);
    accounts = fixture.get(AccountService);
  });
  afterAll(() => fixture?.close());

  const newAccount = async () =>
    (await accounts.create(`tokens-${kind}-${++n}`, 'correct horse battery')).account;
  const row = (jti: string) =>
    fixture.dataSource.getRepository(IssuedToken).findOneByOrFail({ jti });
  const liveRows = (accountId: string) =>
    fixture.dataSource.getRepository(IssuedToken).countBy({ accountId, revokedAt: IsNull() });
  /** A little random delay, so that each trial interleaves the two requests differently. */
  const jitter = () => sleep(Math.floor(Math.random() * 6));

  it('spends a refresh token once; a re-used one revokes its family, newest pair included', async () => {
    const account = await newAccount();
    const first = await tokens.issue(account);
    const second = await tokens.refresh(first.refresh_token);
    expect(await settle(tokens.refresh(first.refresh_token))).toBe(401);
    expect((await row(jtiOf(first.refresh_token))).revokedReason).toBe('reuse-detected');
    expect((await row(jtiOf(second.access_token))).revokedAt).not.toBeNull();
    expect(await settle(tokens.refresh(second.refresh_token))).toBe(401);
    expect(await liveRows(account.id)).toBe(0);
  });

  it(`a logout racing a refresh of the same login always wins (${TRIALS} trials)`, async () => {
    const account = await newAccount();
    let survivors = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const pair = await tokens.issue(account);
      const { familyId } = await row(jtiOf(pair.access_token));
      // POST /auth/revoke with the access token ends its login (family).
      const [refreshed] = await Promise.all([
        settle(tokens.refresh(pair.refresh_token)),
        jitter().then(() => tokens.revokeFamily(familyId)),
      ]);
      if (isPair(refreshed)) {
        if ((await settle(tokens.refresh(refreshed.refresh_token))) !== 401) survivors++;
        if ((await row(jtiOf(refreshed.access_token))).revokedAt === null) survivors++;
      }
    }
    expect(survivors).toBe(0);
    expect(await liveRows(account.id)).toBe(0);
  });

  it(`a revoke-all racing refreshes and a login always wins (${TRIALS} trials)`, async () => {
    const account = await newAccount();
    let survivors = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const pair = await tokens.issue({ id: account.id }); // reads the current epoch
      // A login whose factors were checked before the revoke-all (it read the old epoch).
      const checked = await fixture.dataSource
        .getRepository('Account')
        .findOneByOrFail({ id: account.id });
      const results = await Promise.all([
        settle(tokens.refresh(pair.refresh_token)),
        jitter().then(() => settle(tokens.issue(checked as typeof account))),
        jitter().then(() => tokens.revokeAllForAccount(account.id, 'password-changed')),
      ]);
      for (const result of results.filter(isPair)) {
        if ((await settle(tokens.refresh(result.refresh_token))) !== 401) survivors++;
        if ((await row(jtiOf(result.access_token))).revokedAt === null) survivors++;
      }
      await sleep(1000 - (Date.now() % 1000) + 5); // the cut-off is in whole seconds
    }
    expect(survivors).toBe(0);
    expect(await liveRows(account.id)).toBe(0);
  }, 120_000);

  it('of ten parallel refreshes with one token, at most one wins and the family dies', async () => {
    const account = await newAccount();
    const pair = await tokens.issue(account);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => settle(tokens.refresh(pair.refresh_token))),
    );
    expect(results.filter(isPair).length).toBeLessThanOrEqual(1);
    expect(results.filter((r) => !isPair(r) && r !== 401)).toEqual([]);
    expect(await liveRows(account.id)).toBe(0);
  });

  it('prunes only rows expired for longer than the grace period', async () => {
    const account = await newAccount();
    const pair = await tokens.issue(account);
    const repo = fixture.dataSource.getRepository(IssuedToken);
    const old = Math.floor(Date.now() / 1000) - 10 * 86_400;
    await repo.update({ jti: jtiOf(pair.access_token) }, { exp: old });
    await tokens.pruneExpired();
    expect(await repo.existsBy({ jti: jtiOf(pair.access_token) })).toBe(false);
    expect(await repo.existsBy({ jti: jtiOf(pair.refresh_token) })).toBe(true);
  });
});
