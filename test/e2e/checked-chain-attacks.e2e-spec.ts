/**
 * Attacks on the family check of logins and refreshes (`RawQuery.checkedChain`: inside the group
 * commit's transaction on SQLite, after the commit on the servers, the new rows withdrawn when
 * it fails), on the refresh that reads the account's row with its token record, and on the
 * tokens signed at once (ES256, EdDSA, HMAC). Written by a red team against those changes; it
 * found that a check undoing the spend let a refused refresh token work again once the
 * account's disabled flag was set back (the spend is kept now). `RT_TRIALS` sets the trials.
 */
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import {
  burst,
  expectNoViolations,
  meStatus,
  refreshAt,
  runTrials,
  sleep,
  violationCollector,
} from '../support/race.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { startApp as startOwnUsersApp } from '../fixtures/own-users/app.module.js';
import { User as OwnUser } from '../fixtures/own-users/user.entity.js';
import { generateJwk, writeJwks } from '../support/keys.js';
import { RawQuery } from '../../lib/core/database/raw-query.js';

const TRIALS = Number(process.env.RT_TRIALS ?? 6);
const SKEWS = [0, 1, 2, -1, -2, 0, 4, -4];

type Pair = { access_token: string; refresh_token: string };
type Creds = { id: string; username: string; password: string; secretKey: string };
type Check = (condition: boolean, what: string) => void;

/** `n` parallel logins of `account` with its password and secret key. */
function loginBurst(app: RunningApp, account: Creds, n: number) {
  return burst(n, () =>
    app.http().post('/auth/token').send({
      username: account.username,
      password: account.password,
      secretKey: account.secretKey,
    }),
  );
}

async function after<T>(ms: number, send: () => PromiseLike<T>): Promise<T> {
  if (ms > 0) await sleep(ms);
  return send();
}

/** Access tokens first, then refresh tokens newest first (re-use would hide a live pair). */
async function checkDead(check: Check, app: RunningApp, pairs: [string, Pair | undefined][]) {
  const present = pairs.filter((p): p is [string, Pair] => p[1] !== undefined);
  for (const [what, pair] of present) {
    const s = await meStatus(app, pair.access_token);
    check(s === 401, `${what}: access answered ${s}`);
  }
  for (const [what, pair] of present) {
    const r = await refreshAt(app, pair.refresh_token);
    check(r.status === 401, `${what}: refresh answered ${r.status}`);
  }
}

describe.each(databases())('checked chain attacks on %s', (kind) => {
  let suite: SuiteEnvironment;
  let app: RunningApp;
  let admin: Creds;
  let adminPair: Pair;
  let jwks: ReturnType<typeof createLocalJWKSet>;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, { LOCKOUT_MAX_ATTEMPTS: '1000' });
    const first = await startSampleApp(suite.env);
    admin = await signUp(first, 'rt.admin');
    await first.close();
    app = await startSampleApp({ ...suite.env, ADMIN_ACCOUNT_IDS: admin.id });
    adminPair = await logIn(app, admin);
    const set = (await app.http().get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet;
    jwks = createLocalJWKSet(set);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await suite?.cleanup();
  });

  async function validJwt(check: Check, token: string, what: string) {
    try {
      const header = decodeProtectedHeader(token);
      check(typeof header.kid === 'string' && header.kid.length > 0, `${what}: no kid`);
      const { payload } = await jwtVerify(token, jwks, { issuer: 'https://issuer.test' });
      for (const claim of ['sub', 'exp', 'iss', 'nbf', 'iat', 'jti'] as const) {
        check(payload[claim] !== undefined, `${what}: no ${claim}`);
      }
      return payload;
    } catch (error) {
      check(false, `${what}: jose refused it: ${(error as Error).message}`);
      return undefined;
    }
  }

  const fresh = async (): Promise<Creds> => signUp(app);

  it(`N parallel refreshes of one token: at most one 200, re-use kills the winner (${TRIALS} trials)`, async () => {
    const account = await fresh();
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const pair = await logIn(app, account);
      const n = 6 + (trial % 3) * 4;
      const results = await burst(n, () => refreshAt(app, pair.refresh_token));
      const statuses = results.map((r) => r.status);
      const wins = results.filter((r) => r.status === 200);
      check(wins.length <= 1, `${wins.length} refreshes answered 200`);
      check(
        statuses.every((s) => s === 200 || s === 401),
        `statuses ${statuses.join(',')}`,
      );
      // Burst losers presenting a spent token revoke the family already; make sure re-use does.
      const again = await refreshAt(app, pair.refresh_token);
      check(again.status === 401, `re-use answered ${again.status}`);
      await checkDead(
        check,
        app,
        wins.map((w, i): [string, Pair | undefined] => [`winner ${i}`, w.pair]),
      );
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it(`a single (non-raced) refresh then re-use: winner's pair dies (${TRIALS} trials)`, async () => {
    const account = await fresh();
    const report = await runTrials(TRIALS, async () => {
      const { check, violations } = violationCollector();
      const pair = await logIn(app, account);
      const won = await refreshAt(app, pair.refresh_token);
      check(won.status === 200, `refresh answered ${won.status}`);
      if (won.pair) {
        await validJwt(check, won.pair.access_token, 'refreshed access');
        await validJwt(check, won.pair.refresh_token, 'refreshed refresh');
        check((await meStatus(app, won.pair.access_token)) === 200, 'winner access not live');
      }
      // Two parallel re-uses of the rotated token plus one of the winner's.
      const [a, b] = await burst(2, () => refreshAt(app, pair.refresh_token));
      check(a.status === 401 && b.status === 401, `re-use answered ${a.status},${b.status}`);
      await checkDead(check, app, [['winner', won.pair]]);
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it(`logout (POST /auth/revoke) racing a burst of refreshes and of the next-gen refresh (${TRIALS} trials)`, async () => {
    const account = await fresh();
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const pair = await logIn(app, account);
      if (trial % 2 === 0) check((await meStatus(app, pair.access_token)) === 200, 'warm-up');
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshes, revoked] = await Promise.all([
        after(skew, () => burst(4, () => refreshAt(app, pair.refresh_token))),
        after(-skew, () =>
          app.http().post('/auth/revoke').set('Authorization', `Bearer ${pair.access_token}`),
        ),
      ]);
      // A losing refresh of the burst is a re-use: it may revoke the family before the logout
      // is authenticated (then the logout answers 401, its access token already dead).
      check([204, 401].includes(revoked.status), `revoke answered ${revoked.status}`);
      const statuses = refreshes.map((r) => r.status);
      check(
        statuses.every((s) => s === 200 || s === 401),
        `refreshes ${statuses.join(',')}`,
      );
      check(statuses.filter((s) => s === 200).length <= 1, `two wins: ${statuses.join(',')}`);
      await checkDead(check, app, [
        ...refreshes.map((r, i): [string, Pair | undefined] => [`racing refresh ${i}`, r.pair]),
        ['revoked login', pair],
      ]);
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it(`RFC 7009 revoke of the refresh token racing its refresh (${TRIALS} trials)`, async () => {
    const account = await fresh();
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const pair = await logIn(app, account);
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshed, revoked] = await Promise.all([
        after(skew, () => refreshAt(app, pair.refresh_token)),
        after(-skew, () =>
          app
            .http()
            .post('/auth/revoke')
            .set('Authorization', `Bearer ${pair.access_token}`)
            .send({ token: pair.refresh_token }),
        ),
      ]);
      check(revoked.status === 204, `revoke answered ${revoked.status}`);
      check([200, 401].includes(refreshed.status), `refresh answered ${refreshed.status}`);
      // Only the refresh side is promised dead here (revoking a refresh token revokes its
      // family only when it was already spent): the racing pair must not live.
      await checkDead(check, app, [['racing refresh', refreshed.pair]]);
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it(`refresh of generation k racing logout by generation k access, chained gens (${TRIALS} trials)`, async () => {
    const account = await fresh();
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      let pair = await logIn(app, account);
      // Advance two generations so the family has history.
      for (let g = 0; g < 2; g++) {
        const r = await refreshAt(app, pair.refresh_token);
        check(r.status === 200, `setup refresh ${r.status}`);
        if (r.pair) pair = r.pair;
      }
      const skew = SKEWS[trial % SKEWS.length];
      const [r1, r2, revoked] = await Promise.all([
        after(skew, () => refreshAt(app, pair.refresh_token)),
        after(skew + 1, () => refreshAt(app, pair.refresh_token)),
        after(-skew, () =>
          app.http().post('/auth/revoke').set('Authorization', `Bearer ${pair.access_token}`),
        ),
      ]);
      check([204, 401].includes(revoked.status), `revoke answered ${revoked.status}`);
      check(!(r1.status === 200 && r2.status === 200), 'both refreshes won');
      await checkDead(check, app, [
        ['r1', r1.pair],
        ['r2', r2.pair],
        ['revoked', pair],
      ]);
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it(`admin disable racing refreshes and logins; after enable nothing from before/during lives (${TRIALS} trials)`, async () => {
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const account = await fresh();
      const pair = await logIn(app, account);
      const pair2 = await logIn(app, account);
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshes, logins, disabled] = await Promise.all([
        after(skew, () =>
          burst(3, (i) => refreshAt(app, i === 2 ? pair2.refresh_token : pair.refresh_token)),
        ),
        after(skew, () => loginBurst(app, account, 2)),
        after(-skew, () =>
          app
            .http()
            .post(`/admin/accounts/${account.id}/disable`)
            .set('Authorization', `Bearer ${adminPair.access_token}`),
        ),
      ]);
      check(disabled.status === 204, `disable answered ${disabled.status}`);
      const all = [...refreshes.map((r) => r.status), ...logins.map((l) => l.status)];
      check(
        all.every((s) => s === 200 || s === 401),
        `statuses ${all.join(',')}`,
      );
      const enabled = await app
        .http()
        .post(`/admin/accounts/${account.id}/enable`)
        .set('Authorization', `Bearer ${adminPair.access_token}`);
      check(enabled.status === 204, `enable answered ${enabled.status}`);
      // After re-enabling: nothing from before or during the disable lives again (the original
      // refresh tokens included: their refresh may have been undone by a failed check).
      await checkDead(check, app, [
        ...refreshes.map((r, i): [string, Pair | undefined] => [`racing refresh ${i}`, r.pair]),
        ...logins.map((l, i): [string, Pair | undefined] => [
          `racing login ${i}`,
          l.status === 200 ? (l.body as Pair) : undefined,
        ]),
        ['pair2 (original)', pair2],
        ['pair (original)', pair],
      ]);
      // And the account works again.
      const again = await logIn(app, account);
      check((await meStatus(app, again.access_token)) === 200, 'login after enable not live');
      return violations;
    });
    expectNoViolations(report);
  }, 180_000);

  it(`password change racing a burst of refreshes + logins (${TRIALS} trials)`, async () => {
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const account = await fresh();
      const other = await logIn(app, account);
      const live = await logIn(app, account);
      const skew = SKEWS[trial % SKEWS.length];
      const newPassword = `another long passphrase ${trial}`;
      const [refreshes, logins, changed] = await Promise.all([
        after(skew, () => burst(3, () => refreshAt(app, live.refresh_token))),
        after(skew, () => loginBurst(app, account, 2)),
        after(-skew, () =>
          app
            .http()
            .post('/me/password')
            .set('Authorization', `Bearer ${other.access_token}`)
            .send({ password: account.password, secretKey: account.secretKey, newPassword }),
        ),
      ]);
      check(changed.status === 204, `password change answered ${changed.status}`);
      const all = [...refreshes.map((r) => r.status), ...logins.map((l) => l.status)];
      check(
        all.every((s) => s === 200 || s === 401),
        `statuses ${all.join(',')}`,
      );
      check(refreshes.filter((r) => r.status === 200).length <= 1, 'two refresh wins');
      await checkDead(check, app, [
        ...refreshes.map((r, i): [string, Pair | undefined] => [`racing refresh ${i}`, r.pair]),
        ...logins.map((l, i): [string, Pair | undefined] => [
          `racing login ${i}`,
          l.status === 200 ? (l.body as Pair) : undefined,
        ]),
        ['live', live],
        ['other', other],
      ]);
      return violations;
    });
    expectNoViolations(report);
  }, 180_000);

  it('refreshed admin tokens keep the claims hook roles (account row read with the record)', async () => {
    const { check, violations } = violationCollector();
    let pair = await logIn(app, admin);
    for (let i = 0; i < 3; i++) {
      const r = await refreshAt(app, pair.refresh_token);
      check(r.status === 200, `refresh ${r.status}`);
      if (!r.pair) break;
      pair = r.pair;
      const payload = await validJwt(check, pair.access_token, 'admin access');
      check(
        JSON.stringify(payload?.roles) === JSON.stringify(['user', 'admin']),
        `roles ${JSON.stringify(payload?.roles)}`,
      );
    }
    // And the refreshed token is honoured by the admin guard.
    const res = await app
      .http()
      .post(`/admin/accounts/${(await fresh()).id}/disable`)
      .set('Authorization', `Bearer ${pair.access_token}`);
    check(res.status === 204, `admin route with refreshed token answered ${res.status}`);
    expect(violations).toEqual([]);
  });

  it('bad input on /auth/refresh and /auth/revoke gets 4xx, never 500', async () => {
    const account = await fresh();
    const pair = await logIn(app, account);
    const bodies: unknown[] = [
      {},
      { refresh_token: null },
      { refresh_token: 1 },
      { refresh_token: ['a'] },
      { refresh_token: { $ne: null } },
      { refresh_token: '' },
      { refresh_token: 'a.b.c' },
      { refresh_token: pair.access_token },
      { refresh_token: pair.refresh_token + 'x' },
      { refresh_token: 'x'.repeat(100_000) },
      { refresh_token: pair.refresh_token, extra: 1 },
      '"just a string"',
      '[]',
    ];
    const statuses: number[] = [];
    for (const body of bodies) {
      const req = app.http().post('/auth/refresh');
      const res =
        typeof body === 'string'
          ? await req.set('Content-Type', 'application/json').send(body)
          : await req.send(body as object);
      statuses.push(res.status);
    }
    for (const body of [{ token: 5 }, { token: null, token_type_hint: 7 }, { token: 'a.b.c' }]) {
      const res = await app
        .http()
        .post('/auth/revoke')
        .set('Authorization', `Bearer ${pair.access_token}`)
        .send(body);
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });

  /**
   * Deterministic interleaving: the account's disabled flag is flipped (as an own-users app
   * flips its column, without a revoke-all) after the refresh read its record and before its
   * checked chain runs; the check fails. Then the flag is flipped back. On SQLite the spend was
   * undone, so the rotated-by-nobody token refreshes again; on the servers it stays spent and
   * presenting it is re-use. The brief's property: a token whose refresh was undone must not
   * yield a live pair afterwards.
   */
  it('a refresh refused by its check (disabled set between its read and its writes) stays spent after the flag is set back', async () => {
    const account = await fresh();
    const pair = await logIn(app, account);
    const proto = RawQuery.prototype as unknown as {
      checkedChain: (...args: unknown[]) => Promise<unknown>;
    };
    const original = proto.checkedChain;
    let armed = true;
    const flip = (value: boolean) =>
      app.dataSource.query(
        kind === 'postgres'
          ? 'UPDATE tfa_accounts SET disabled = $1 WHERE id = $2'
          : 'UPDATE tfa_accounts SET disabled = ? WHERE id = ?',
        [kind === 'postgres' ? value : value ? 1 : 0, account.id],
      );
    proto.checkedChain = async function (this: unknown, ...args: unknown[]) {
      if (armed) {
        armed = false;
        await flip(true);
      }
      return original.apply(this, args);
    };
    let first: Awaited<ReturnType<typeof refreshAt>>;
    try {
      first = await refreshAt(app, pair.refresh_token);
    } finally {
      proto.checkedChain = original;
    }
    expect(first.status).toBe(401);
    await flip(false);
    const second = await refreshAt(app, pair.refresh_token);
    let live = false;
    if (second.pair) live = (await meStatus(app, second.pair.access_token)) === 200;
    // Report what happened in the message.
    expect({ kind, secondStatus: second.status, live }).toEqual({
      kind,
      secondStatus: 401,
      live: false,
    });
  });
  /** Control for the previous test: the same flag flip with no race (refused at the read). */
  it('control: refresh presented while disabled (no race), then flipped back', async () => {
    const account = await fresh();
    const pair = await logIn(app, account);
    const flip = (value: boolean) =>
      app.dataSource.query(
        kind === 'postgres'
          ? 'UPDATE tfa_accounts SET disabled = $1 WHERE id = $2'
          : 'UPDATE tfa_accounts SET disabled = ? WHERE id = ?',
        [kind === 'postgres' ? value : value ? 1 : 0, account.id],
      );
    await flip(true);
    const first = await refreshAt(app, pair.refresh_token);
    await flip(false);
    const second = await refreshAt(app, pair.refresh_token);
    // Refused at its read, before anything was spent: the token still works once the flag is
    // set back (the module's own `disable` revokes every token; an application's flag may not).
    expect({ kind, first: first.status, second: second.status }).toEqual({
      kind,
      first: 401,
      second: 200,
    });
  });

  it(`one chain's failed check in a group does not undo its neighbours (${TRIALS} trials)`, async () => {
    const report = await runTrials(TRIALS, async (trial) => {
      const { check, violations } = violationCollector();
      const alive = await fresh();
      const doomed = await fresh();
      const alivePairs = await Promise.all([0, 1, 2, 3].map(() => logIn(app, alive)));
      const doomedPairs = await Promise.all([0, 1].map(() => logIn(app, doomed)));
      const skew = SKEWS[trial % SKEWS.length];
      const [aliveRefreshed, doomedRefreshed, disabled] = await Promise.all([
        burst(alivePairs.length, (i) => refreshAt(app, alivePairs[i].refresh_token)),
        after(skew, () =>
          burst(doomedPairs.length, (i) => refreshAt(app, doomedPairs[i].refresh_token)),
        ),
        after(-skew, () =>
          app
            .http()
            .post(`/admin/accounts/${doomed.id}/disable`)
            .set('Authorization', `Bearer ${adminPair.access_token}`),
        ),
      ]);
      check(disabled.status === 204, `disable answered ${disabled.status}`);
      for (const [i, r] of aliveRefreshed.entries()) {
        check(r.status === 200, `alive refresh ${i} answered ${r.status}`);
        if (r.pair) {
          const s = await meStatus(app, r.pair.access_token);
          check(s === 200, `alive refresh ${i}: access answered ${s}`);
          await validJwt(check, r.pair.access_token, `alive ${i} access`);
        }
      }
      await checkDead(check, app, [
        ...doomedRefreshed.map((r, i): [string, Pair | undefined] => [
          `doomed refresh ${i}`,
          r.pair,
        ]),
        ...doomedPairs.map((p, i): [string, Pair | undefined] => [`doomed original ${i}`, p]),
      ]);
      // The alive refreshed pairs refresh again.
      for (const [i, r] of aliveRefreshed.entries()) {
        if (!r.pair) continue;
        const again = await refreshAt(app, r.pair.refresh_token);
        check(again.status === 200, `alive ${i}: second refresh answered ${again.status}`);
      }
      return violations;
    });
    expectNoViolations(report);
  }, 180_000);

  it(`account deletion racing refreshes and logins: no 500, nothing lives (${Math.ceil(TRIALS / 2)} trials)`, async () => {
    const report = await runTrials(Math.ceil(TRIALS / 2), async (trial) => {
      const { check, violations } = violationCollector();
      const account = await fresh();
      const deleter = await logIn(app, account);
      const pairs = await Promise.all([0, 1].map(() => logIn(app, account)));
      const skew = SKEWS[trial % SKEWS.length];
      const [refreshes, logins, deleted] = await Promise.all([
        after(skew, () => burst(pairs.length, (i) => refreshAt(app, pairs[i].refresh_token))),
        after(skew, () => loginBurst(app, account, 2)),
        after(-skew, () =>
          app
            .http()
            .delete('/me')
            .set('Authorization', `Bearer ${deleter.access_token}`)
            .send({ password: account.password, secretKey: account.secretKey }),
        ),
      ]);
      check(deleted.status === 204, `delete answered ${deleted.status}`);
      const all = [...refreshes.map((r) => r.status), ...logins.map((l) => l.status)];
      check(
        all.every((s) => s === 200 || s === 401),
        `statuses ${all.join(',')}`,
      );
      await checkDead(check, app, [
        ...refreshes.map((r, i): [string, Pair | undefined] => [`racing refresh ${i}`, r.pair]),
        ...logins.map((l, i): [string, Pair | undefined] => [
          `racing login ${i}`,
          l.status === 200 ? (l.body as Pair) : undefined,
        ]),
      ]);
      return violations;
    });
    expectNoViolations(report);
  }, 180_000);
});

/** The algorithms that now sign on the event loop: tokens still verify with jose. */
describe.each(['EdDSA', 'HS256', 'HS512', 'ES256'] as const)(
  'inline-signed %s tokens on sqlite',
  (alg) => {
    let suite: SuiteEnvironment;
    let app: RunningApp;
    let jwk: ReturnType<typeof generateJwk>;
    beforeAll(async () => {
      suite = await createSuiteEnvironment('sqlite');
      jwk = generateJwk(alg, `rt-${alg}`);
      app = await startSampleApp({
        ...suite.env,
        JWT_KEYS_FILE: writeJwks(suite.dir, [jwk], 'k.json'),
      });
    }, 60_000);
    afterAll(async () => {
      await app?.close();
      await suite?.cleanup();
    });

    it('login and a burst of refreshes give jose-valid JWTs with kid and registered claims', async () => {
      const { check, violations } = violationCollector();
      const account = await signUp(app);
      const verifyKey = alg.startsWith('HS')
        ? new Uint8Array(Buffer.from((jwk as unknown as { k: string }).k, 'base64url'))
        : createLocalJWKSet(
            (await app.http().get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet,
          );
      const tokens: string[] = [];
      for (let i = 0; i < 5; i++) {
        const pair = await logIn(app, account);
        const results = await burst(4, () => refreshAt(app, pair.refresh_token));
        check(results.filter((r) => r.status === 200).length <= 1, 'two wins');
        tokens.push(pair.access_token, pair.refresh_token);
        const fresh2 = await logIn(app, account);
        const won = await refreshAt(app, fresh2.refresh_token);
        check(won.status === 200, `refresh ${won.status}`);
        if (won.pair) tokens.push(won.pair.access_token, won.pair.refresh_token);
      }
      for (const token of tokens) {
        try {
          const header = decodeProtectedHeader(token);
          check(
            header.kid === `rt-${alg}` && header.alg === alg,
            `header ${JSON.stringify(header)}`,
          );
          const { payload } = await jwtVerify(token, verifyKey as Parameters<typeof jwtVerify>[1], {
            issuer: 'https://issuer.test',
            algorithms: [alg],
          });
          for (const claim of ['sub', 'exp', 'iss', 'nbf', 'iat', 'jti'] as const) {
            check(payload[claim] !== undefined, `no ${claim}`);
          }
        } catch (error) {
          check(false, `jose refused: ${(error as Error).message}`);
        }
      }
      expect(violations).toEqual([]);
    });
  },
);

/**
 * The brief's own-users case: the application flips its own `disabled` column (no revoke-all)
 * while a refresh is between its read and its checked chain, then flips it back.
 */
describe.each(databases())(
  'own-users app flips disabled around a refused refresh, on %s',
  (kind) => {
    let database: TestDatabase;
    let app: INestApplication;
    let url: string;
    let dataSource: DataSource;
    beforeAll(async () => {
      database = await createTestDatabase(kind);
      app = await startOwnUsersApp({
        kind,
        url: database.url,
        twoFactor: {
          issuer: 'https://own-users.test',
          keys: [generateJwk('ES256', 'own-rt')],
          throttle: false,
          totp: { encryptionKeys: [{ id: 'totp-1', key: randomBytes(32).toString('base64') }] },
        },
      });
      const { port } = app.getHttpServer().address() as { port: number };
      url = `http://127.0.0.1:${port}`;
      dataSource = app.get<DataSource>(getDataSourceToken());
    }, 60_000);
    afterAll(async () => {
      await app?.close();
      await database?.drop();
    });

    it('a refresh refused by its check stays spent after the application sets its flag back', async () => {
      const http = () => request(url);
      const email = `rt-${kind}-${Date.now()}@example.test`;
      const up = await http()
        .post('/users')
        .send({ email, password: 'correct horse battery staple' });
      expect(up.status).toBe(201);
      const { id, secretKey } = up.body as { id: number; secretKey: string };
      const login = await http()
        .post('/auth/token')
        .send({ username: email, password: 'correct horse battery staple', secretKey });
      expect(login.status).toBe(200);
      const pair = login.body as Pair;
      const users = () => dataSource.getRepository(OwnUser);
      const proto = RawQuery.prototype as unknown as {
        checkedChain: (...args: unknown[]) => Promise<unknown>;
      };
      const original = proto.checkedChain;
      let armed = true;
      proto.checkedChain = async function (this: unknown, ...args: unknown[]) {
        if (armed) {
          armed = false;
          await users().update({ id }, { disabled: true });
        }
        return original.apply(this, args);
      };
      let first;
      try {
        first = await http().post('/auth/refresh').send({ refresh_token: pair.refresh_token });
      } finally {
        proto.checkedChain = original;
      }
      expect(first.status).toBe(401);
      await users().update({ id }, { disabled: false });
      const second = await http().post('/auth/refresh').send({ refresh_token: pair.refresh_token });
      let live = false;
      if (second.status === 200) {
        const me = await http()
          .get('/me')
          .set('Authorization', `Bearer ${second.body.access_token}`);
        live = me.status === 200;
      }
      expect({ kind, secondStatus: second.status, live }).toEqual({
        kind,
        secondStatus: 401,
        live: false,
      });
    });
  },
);
