/**
 * Revocation racing token issue, in many trials: once a logout (`POST /auth/revoke`) or a
 * revoke-all (secret-key rotation, password change) has answered, no token of that login or
 * account works or refreshes, whatever was in flight: a refresh racing it either fails or hands
 * out a pair that is already dead. On one instance this holds at once; across two instances
 * (an in-process app and a spawned one, on one database, with Redis and without) within the
 * propagation bound.
 *
 * Each trial sends the racing requests in the same tick, with a small skew that changes from
 * trial to trial so that the interleavings vary, then checks every token. The violations of
 * all trials are collected, so that a failure says in how many trials the contract broke.
 */
import { Redis } from 'ioredis';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  SUITE_ISSUER,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { revocationChannel } from '../../lib/core/revocation/revocation-view.service.js';
import {
  expectNoViolations,
  holdsWithin,
  meStatus,
  refreshAt,
  runTrials,
  sleep,
  violationCollector,
  type HttpTarget,
  type Violations,
} from '../support/race.js';
import { databases, isAvailable, type DatabaseKind } from '../support/servers.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

const TRIALS = 25;
/** Milliseconds one racing request is sent after the other, by trial (negative: before). */
const SKEWS = [0, 1, 3, -1, -3, 0, 6, -6];

type Pair = { access_token: string; refresh_token: string };
type Credentials = { username: string; password: string; secretKey: string };
type Answer = { status: number; body: Record<string, string> };
type Check = (condition: boolean, what: string) => void;

/** Sends `send()` after `ms` milliseconds (at once for 0 or less). */
async function after<T>(ms: number, send: () => PromiseLike<T>): Promise<T> {
  if (ms > 0) await sleep(ms);
  return send();
}

function revokeLogin(target: HttpTarget, accessToken: string) {
  return target.http().post('/auth/revoke').set('Authorization', `Bearer ${accessToken}`);
}

function login(target: HttpTarget, { username, password, secretKey }: Credentials) {
  return target.http().post('/auth/token').send({ username, password, secretKey });
}

/**
 * Records a violation for each way the pairs (named) still work on `target`, now. Every access
 * token is tried first, then the refresh tokens newest first: presenting a spent refresh token
 * revokes its whole family (re-use detection), which would hide a live newer pair.
 */
async function checkDead(check: Check, target: HttpTarget, pairs: [string, Pair | undefined][]) {
  const present = pairs.filter((p): p is [string, Pair] => p[1] !== undefined);
  for (const [what, pair] of present) {
    const access = await meStatus(target, pair.access_token);
    check(access === 401, `${what}: its access token answered ${access} on GET /me`);
  }
  for (const [what, pair] of present) {
    const refreshed = await refreshAt(target, pair.refresh_token);
    check(refreshed.status === 401, `${what}: its refresh token answered ${refreshed.status}`);
  }
}

describe.each(databases())('revocation races on %s, one instance', (kind) => {
  let suite: SuiteEnvironment;
  let app: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, { LOCKOUT_MAX_ATTEMPTS: '50' });
    app = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await app?.close();
    await suite?.cleanup();
  });

  it(`POST /auth/refresh racing POST /auth/revoke of the same login leaves nothing working (${TRIALS} trials)`, async () => {
    const account = await signUp(app);
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const pair = await logIn(app, account);
      // Every other trial the access token is known to the guard (cached), so that the
      // revocation must reach the guard's view, not only the record.
      if (trial % 2 === 0) check((await meStatus(app, pair.access_token)) === 200, 'warm-up');
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshed, revoked] = await Promise.all([
        after(skew, () => refreshAt(app, pair.refresh_token)),
        after(-skew, () => revokeLogin(app, pair.access_token)),
      ]);
      check(revoked.status === 204, `revoke answered ${revoked.status}`);
      check([200, 401].includes(refreshed.status), `refresh answered ${refreshed.status}`);
      await checkDead(check, app, [
        ['the racing refresh', refreshed.pair],
        ['the revoked login', pair],
      ]);
      return violations;
    });
    expectNoViolations(report);
    // The account itself was never revoked: a new login works.
    expect(await meStatus(app, (await logIn(app, account)).access_token)).toBe(200);
  }, 60_000);

  /**
   * The trials of a revoke-all race: a refresh of a live login and a login with the old factors
   * race `change` (made with the access token of another login); afterwards every token issued
   * before and during is dead, and the new factors (`renewed`) log in. That new login and the
   * new factors are the next trial's starting point (a fresh account after a failed trial).
   */
  function revokeAllTrials(
    change: (account: Credentials, accessToken: string, trial: number) => PromiseLike<Answer>,
    expected: number,
    renewed: (account: Credentials, changed: Answer, trial: number) => Credentials,
  ): (trial: number) => Promise<Violations> {
    let carried: { account: Credentials; session: Pair } | undefined;
    return async (trial) => {
      const { check, violations } = violationCollector();
      const start = carried ?? (await newAccount());
      carried = undefined;
      const { account, session: other } = start;
      const live = await logIn(app, account);
      check((await meStatus(app, live.access_token)) === 200, 'warm-up');
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshed, loggedIn, changed] = await Promise.all([
        after(skew, () => refreshAt(app, live.refresh_token)),
        after(skew, () => login(app, account)),
        after(-skew, () => change(account, other.access_token, trial)),
      ]);
      check(changed.status === expected, `the change answered ${changed.status}`);
      check([200, 401].includes(refreshed.status), `refresh answered ${refreshed.status}`);
      check([200, 401].includes(loggedIn.status), `the racing login answered ${loggedIn.status}`);
      await checkDead(check, app, [
        ['the racing refresh', refreshed.pair],
        ['the racing login', loggedIn.status === 200 ? (loggedIn.body as Pair) : undefined],
        ['the login refreshed', live],
        ['the login that made the change', other],
      ]);
      // The new factors log in, and that token works: the checks above can tell.
      const factors = renewed(account, changed, trial);
      const fresh = await login(app, factors);
      check(fresh.status === 200, `login with the new factors answered ${fresh.status}`);
      const works = fresh.status === 200 && (await meStatus(app, fresh.body.access_token)) === 200;
      check(works, 'the login with the new factors is refused');
      if (works) carried = { account: factors, session: fresh.body as Pair };
      return violations;
    };
  }

  async function newAccount(): Promise<{ account: Credentials; session: Pair }> {
    const { username, password, secretKey } = await signUp(app);
    const account = { username, password, secretKey };
    return { account, session: await logIn(app, account) };
  }

  it(`a secret-key rotation racing a refresh and a login kills every token before and during (${TRIALS} trials)`, async () => {
    const trial = revokeAllTrials(
      (account, accessToken) =>
        app
          .http()
          .post('/me/secret-key')
          .set('Authorization', `Bearer ${accessToken}`)
          .send({ password: account.password, secretKey: account.secretKey }),
      200,
      (account, changed) => ({ ...account, secretKey: changed.body.secretKey }),
    );
    expectNoViolations(await runTrials(TRIALS, trial));
  }, 90_000);

  it(`a password change racing a refresh and a login kills every token before and during (${TRIALS} trials)`, async () => {
    const newPassword = (trial: number) => `a brand new passphrase, number ${trial}`;
    const trial = revokeAllTrials(
      (account, accessToken, index) =>
        app
          .http()
          .post('/me/password')
          .set('Authorization', `Bearer ${accessToken}`)
          .send({
            password: account.password,
            secretKey: account.secretKey,
            newPassword: newPassword(index),
          }),
      204,
      (account, _changed, index) => ({ ...account, password: newPassword(index) }),
    );
    expectNoViolations(await runTrials(TRIALS, trial));
  }, 90_000);
});

/** The documented bound with Redis (DESIGN.md, Performance). */
const PUB_SUB_BOUND_MS = 1000;
/** Without Redis: `revocation.syncInterval` (500 ms by default), with room for a slow poll. */
const POLL_BOUND_MS = 2000;

type Sync = 'Redis' | 'database poll only';
const syncs: Sync[] = isAvailable('redis')
  ? ['Redis', 'database poll only']
  : ['database poll only'];
const twoInstanceSetups = databases().flatMap((kind) =>
  syncs.map((sync): [DatabaseKind, Sync] => [kind, sync]),
);

describe.each(twoInstanceSetups)('revocation races on %s, two instances, %s', (kind, sync) => {
  const bound = sync === 'Redis' ? PUB_SUB_BOUND_MS : POLL_BOUND_MS;
  let suite: SuiteEnvironment;
  let a: RunningApp;
  let b: SpawnedApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(
      kind,
      sync === 'Redis' ? { REDIS_URL: process.env.TEST_REDIS_URL! } : {},
    );
    a = await startSampleApp(suite.env);
    b = await spawnSampleApp(suite.env);
  }, 60_000);
  afterAll(async () => {
    await b?.stop();
    await a?.close();
    await suite?.cleanup();
  });

  it(`reports Redis ${sync === 'Redis' ? 'on' : 'off'} on both instances`, async () => {
    for (const target of [a, b] as HttpTarget[]) {
      const res = await target.http().get('/health').expect(200);
      expect(Object.keys(res.body.details).sort()).toEqual(
        sync === 'Redis' ? ['database', 'redis'] : ['database'],
      );
    }
    if (sync === 'Redis') {
      // Both instances listen on the revocation channel (other suites may listen too).
      const client = new Redis(process.env.TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
      try {
        const [, count] = (await client.call(
          'PUBSUB',
          'NUMSUB',
          revocationChannel(SUITE_ISSUER),
        )) as [string, number];
        expect(Number(count)).toBeGreaterThanOrEqual(2);
      } finally {
        client.disconnect();
      }
    }
  });

  it(`a logout on one instance racing a refresh on the other leaves nothing working on either within ${bound} ms (${TRIALS} trials)`, async () => {
    const account = await signUp(a);
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      // The logout runs on A in even trials, on B in odd ones; the refresh on the other.
      const [revoker, refresher]: HttpTarget[] = trial % 2 === 0 ? [a, b] : [b, a];
      const pair: Pair = (await login(refresher, account).expect(200)).body;
      // Both instances know (cache) the access token: the revocation must reach their views.
      for (const target of [a, b] as HttpTarget[]) {
        check((await meStatus(target, pair.access_token)) === 200, 'warm-up');
      }
      const skew = SKEWS[trial % SKEWS.length];
      let revokedAt = 0;
      const [refreshed, revoked] = await Promise.all([
        after(skew, () => refreshAt(refresher, pair.refresh_token)),
        after(-skew, async () => {
          const res = await revokeLogin(revoker, pair.access_token);
          revokedAt = Date.now();
          return res;
        }),
      ]);
      check(revoked.status === 204, `revoke answered ${revoked.status}`);
      check([200, 401].includes(refreshed.status), `refresh answered ${refreshed.status}`);
      // On the instance that revoked, at once.
      const here = await meStatus(revoker, pair.access_token);
      check(here === 401, `the revoked access token answered ${here} where it was revoked`);
      // Everywhere within the bound, counted from the logout's answer; the access tokens first,
      // then the refresh tokens newest first (see checkDead).
      const tokens: [string, Pair | undefined][] = [
        ['the racing refresh', refreshed.pair],
        ['the revoked login', pair],
      ];
      const instances: [string, HttpTarget][] = [
        ['A', a],
        ['B', b],
      ];
      for (const [name, target] of instances) {
        for (const [what, p] of tokens) {
          if (!p) continue;
          const refused = await holdsWithin(
            async () => (await meStatus(target, p.access_token)) === 401,
            revokedAt,
            bound,
          );
          check(refused, `${what}: its access token still worked on ${name} after ${bound} ms`);
        }
      }
      for (const [name, target] of instances) {
        for (const [what, p] of tokens) {
          if (!p) continue;
          const { status } = await refreshAt(target, p.refresh_token);
          check(status === 401, `${what}: its refresh token answered ${status} on ${name}`);
        }
      }
      return violations;
    });
    expectNoViolations(report);
    // Nothing else was revoked: a new login works on both.
    const fresh = await logIn(a, account);
    expect(await meStatus(b, fresh.access_token)).toBe(200);
  }, 90_000);
});
