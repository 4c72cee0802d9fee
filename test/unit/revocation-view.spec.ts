import { RevocationView } from '../../lib/core/revocation/revocation-view.service.js';
import type {
  RevocationEvent,
  RevocationLog,
} from '../../lib/core/revocation/revocation-log.service.js';
import { resolveTwoFactorAuthOptions } from '../../lib/core/options/two-factor-auth.options-validation.js';
import { generateJwk } from '../support/keys.js';

const options = resolveTwoFactorAuthOptions({
  issuer: 'https://issuer.test',
  keys: [generateJwk('ES256', 'unit-es256')],
  revocation: { syncInterval: 50, maxStaleness: 1000 },
});

/** A revocation log whose answers the test controls; `hang` makes the next reads never answer. */
function scriptedLog() {
  let hang = false;
  let dbNow = 1_000_000;
  const reads: number[] = [];
  const event: RevocationEvent = { tokens: [], accounts: [] };
  const log = {
    now: async () => (hang ? new Promise<number>(() => undefined) : (dbNow += 100)),
    since: async (since: number) => {
      reads.push(since);
      return event;
    },
  } as unknown as RevocationLog;
  return {
    log,
    event,
    reads,
    setHang: (value: boolean) => (hang = value),
    skewDatabaseClock: (ms: number) => (dbNow += ms),
  };
}

describe('RevocationView', () => {
  it('abandons a poll that never answers, so the next one can make the view fresh again', async () => {
    const script = scriptedLog();
    const view = new RevocationView(script.log, options, null);
    await view.sync();
    expect(view.isFresh()).toBe(true);
    script.setHang(true);
    await expect(view.sync()).rejects.toThrow(/no answer/);
    script.setHang(false);
    await view.sync();
    expect(view.isFresh()).toBe(true);
  }, 10_000);

  it('takes its cursor from the database clock, never from its own', async () => {
    const script = scriptedLog();
    const view = new RevocationView(script.log, options, null);
    await view.sync();
    // The database clock runs an hour ahead of this process: the next read starts from the
    // database's time (minus the overlap), not from this process's.
    script.skewDatabaseClock(3_600_000);
    await view.sync();
    await view.sync();
    const last = script.reads.at(-1)!;
    expect(last).toBeGreaterThan(1_000_000 + 3_600_000 - 20_000);
  });

  it('applies revoked access tokens and account cut-offs from the log', async () => {
    const script = scriptedLog();
    const view = new RevocationView(script.log, options, null);
    const nowSeconds = Math.floor(Date.now() / 1000);
    script.event.tokens.push(['revoked-jti', nowSeconds + 600]);
    script.event.accounts.push(['account-1', (nowSeconds - 10) * 1000, nowSeconds + 600]);
    await view.sync();
    expect(view.isRevoked('revoked-jti', 'account-2', nowSeconds)).toBe(true);
    expect(view.isRevoked('other-jti', 'account-1', nowSeconds - 20)).toBe(true);
    expect(view.isRevoked('other-jti', 'account-1', nowSeconds)).toBe(false);
    expect(view.isRevoked('other-jti', 'account-2', nowSeconds - 20)).toBe(false);
  });
});
