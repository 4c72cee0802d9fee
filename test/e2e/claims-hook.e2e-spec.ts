import { jest } from '@jest/globals';
import { Account, AccountService, TokenService } from '../../lib/index.js';
import { createModuleFixture, type ModuleFixture } from '../support/module-fixture.js';
import { databases } from '../support/servers.js';

/** The payload of a JWT, read without verifying (the module verified it when it issued it). */
function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/**
 * The `claims` hook on the module's own accounts: it gets the account's `Account` row at a
 * login and at every refresh (where the row comes with the refresh's one read of the token
 * record), so a change to the account shows in the next access token.
 */
describe.each(databases())('claims hook on %s', (kind) => {
  let fx: ModuleFixture;
  const seen: Account[] = [];

  beforeAll(async () => {
    fx = await createModuleFixture(kind, {
      claims: (row: object) => {
        seen.push(row as Account);
        const account = row as Account;
        return { name: account.username, factor: account.secondFactor };
      },
    });
  });
  afterAll(() => fx?.close());

  it('hands the hook the current Account row at login and at each refresh', async () => {
    const accounts = fx.get(AccountService);
    const tokens = fx.get(TokenService);
    const { account } = await accounts.create('claire', 'correct horse battery staple');
    const login = await tokens.issue({ id: account.id });
    expect(payloadOf(login.access_token)).toMatchObject({ name: 'claire', factor: 'secret-key' });

    await accounts.rename(account.id, 'claire-b');
    seen.length = 0;
    const logged = jest.spyOn(fx.dataSource.logger, 'logQuery');
    const refreshed = await tokens.refresh(login.refresh_token);
    const reads = logged.mock.calls.map(([sql]) => sql).filter((sql) => /^\s*SELECT/i.test(sql));
    logged.mockRestore();
    // Two reads: the token's record (with its family and account row), and the family's
    // check after the new pair is written. No read of the account apart.
    expect(reads).toHaveLength(2);
    expect(reads.filter((sql) => /FROM\s+[`"]?tfa_accounts/i.test(sql))).toEqual([]);
    expect(payloadOf(refreshed.access_token)).toMatchObject({
      name: 'claire-b',
      factor: 'secret-key',
    });
    // The same entity a lookup by id returns, every column filled from the database.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(Account);
    const stored = await fx.dataSource.getRepository(Account).findOneByOrFail({ id: account.id });
    expect({ ...seen[0] }).toEqual({ ...stored });
    // The refresh token carries no application claims.
    expect(payloadOf(refreshed.refresh_token)).not.toHaveProperty('name');
  });

  it('reads nothing for the hook when the refresh token is refused', async () => {
    const accounts = fx.get(AccountService);
    const tokens = fx.get(TokenService);
    const { account } = await accounts.create('dora', 'correct horse battery staple');
    const login = await tokens.issue({ id: account.id });
    await tokens.refresh(login.refresh_token);
    seen.length = 0;
    // Spent: refused (and its login revoked) before any claims are computed.
    await expect(tokens.refresh(login.refresh_token)).rejects.toThrow();
    expect(seen).toHaveLength(0);
  });
});
