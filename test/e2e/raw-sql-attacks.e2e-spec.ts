/**
 * Attacks on the hand-written SQL of the hot paths (RawQuery, TokenRecords, TokenIssuer,
 * LockoutService, AccountStore's join), against the real databases. The tests whose comment
 * starts "Found by a red team" failed before their fix (a lockout window fixed at the first
 * failure, lockout times on each instance's clock, a disabled flag read differently on the hot
 * paths); the others are regression tests of attacks that held.
 */
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { resetAccounts } from '../../lib/core/accounts/account-entities.js';
import { bool } from '../../lib/core/database/raw-query.js';
import { startApp } from '../fixtures/own-users/app.module.js';
import type { SignedUp } from '../fixtures/own-users/users.service.js';
import { generateJwk } from '../support/keys.js';
import {
  burst,
  expectNoViolations,
  runTrials,
  sleep,
  tally,
  violationCollector,
  type HttpTarget,
} from '../support/race.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

const WRONG = 'not the password at all';

type Credentials = { username: string; password: string; secretKey: string };

function login(target: HttpTarget, { username, password, secretKey }: Credentials) {
  return target.http().post('/auth/token').send({ username, password, secretKey });
}

/** Waits until `at` (epoch ms). */
const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));

// ---------------------------------------------------------------------------------------------
// Lockout: the counting window
// ---------------------------------------------------------------------------------------------

describe.each(databases())('raw SQL attacks: lockout window on %s', (kind) => {
  const MAX = 3;
  const SECONDS = 2;
  let suite: SuiteEnvironment;
  let a: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: String(MAX),
      LOCKOUT_SECONDS: String(SECONDS),
    });
    a = await startSampleApp(suite.env);
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await suite?.cleanup();
  });

  // Found by a red team (lockout.service.ts, reserve/reclaim): the window is fixed at the FIRST failure and
  // every failure is forgotten at once when it ends, so failures a few hundred ms old stop
  // counting. MAX failures inside one `seconds` period do not lock: an attacker who spaces his
  // guesses around the window's end gets 2 * (MAX - 1) guesses in well under `seconds`.
  it(`locks after ${MAX} failures made within ${SECONDS} s, even across the first failure's window end`, async () => {
    const account = await signUp(a);
    const wrong = { ...account, password: WRONG };
    // Failure 1 opens the window (window_start is set when it is counted, before the answer).
    expect((await login(a, wrong)).status).toBe(401);
    const windowOpened = Date.now();
    // Failure 2, inside the window.
    await sleepUntil(windowOpened + SECONDS * 1000 - 600);
    expect((await login(a, wrong)).status).toBe(401);
    const second = Date.now();
    // Just past the end of the first failure's window: failure 2 is < 1 s old.
    await sleepUntil(windowOpened + SECONDS * 1000 + 100);
    expect((await login(a, wrong)).status).toBe(401);
    const third = Date.now();
    // Failures 2 and 3 (and the one before) all lie within one lock period of each other…
    expect(third - second).toBeLessThan(SECONDS * 1000);
    // … and one more wrong guess makes MAX failures within `seconds` of each other.
    const fourth = await login(a, wrong);
    const fourthAt = Date.now();
    expect(fourthAt - second).toBeLessThan(SECONDS * 1000);
    expect([401, 429]).toContain(fourth.status);
    // MAX failures within one period: the right password must now be refused with 429.
    const right = await login(a, account);
    expect(right.status).toBe(429);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// Refresh: spent once, re-use detected (regression)
// ---------------------------------------------------------------------------------------------

describe.each(databases())('raw SQL attacks: refresh under bursts on %s', (kind) => {
  let suite: SuiteEnvironment;
  let a: RunningApp;
  const BURST = 8;
  const TRIALS = 6;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, { LOCKOUT_MAX_ATTEMPTS: '50' });
    a = await startSampleApp(suite.env);
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await suite?.cleanup();
  });

  it(`spends a refresh token at most once in a burst of ${BURST}, and the burst revokes the family (${TRIALS} trials)`, async () => {
    const account = await signUp(a);
    const report = await runTrials(TRIALS, async () => {
      const { check, violations } = violationCollector();
      const pair = await logIn(a, account);
      const responses = await burst(BURST, () =>
        a.http().post('/auth/refresh').send({ refresh_token: pair.refresh_token }),
      );
      const counts = tally(responses.map((r) => r.status));
      check((counts[200] ?? 0) <= 1, `${counts[200]} refreshes won: ${JSON.stringify(counts)}`);
      check(
        responses.every((r) => r.status === 200 || r.status === 401),
        `statuses other than 200/401: ${JSON.stringify(counts)}`,
      );
      // The losers presented a spent token: the family is revoked, the winner's pair included.
      const won = responses.find((r) => r.status === 200)?.body as
        { access_token: string; refresh_token: string } | undefined;
      if (won && (counts[401] ?? 0) > 0) {
        const me = await a.http().get('/me').set('Authorization', `Bearer ${won.access_token}`);
        check(me.status === 401, `the winner's access token answered ${me.status}`);
        const again = await a
          .http()
          .post('/auth/refresh')
          .send({ refresh_token: won.refresh_token });
        check(again.status === 401, `the winner's refresh token answered ${again.status}`);
      }
      // The original access token of the login is dead too.
      const original = await a
        .http()
        .get('/me')
        .set('Authorization', `Bearer ${pair.access_token}`);
      check(original.status === 401, `the login's access token answered ${original.status}`);
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);

  it('refuses an access token as a refresh token and a refresh token as a bearer token, without changing either', async () => {
    const account = await signUp(a);
    const pair = await logIn(a, account);
    const asRefresh = await a
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: pair.access_token });
    expect(asRefresh.status).toBe(401);
    const asBearer = await a.http().get('/me').set('Authorization', `Bearer ${pair.refresh_token}`);
    expect(asBearer.status).toBe(401);
    // Neither attempt spent or revoked anything.
    expect(
      (await a.http().get('/me').set('Authorization', `Bearer ${pair.access_token}`)).status,
    ).toBe(200);
    const rotated = await a
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: pair.refresh_token });
    expect(rotated.status).toBe(200);
  }, 30_000);

  it('a password change racing refreshes of the same login leaves no working pair (10 trials)', async () => {
    const account = await signUp(a);
    let password = account.password;
    const report = await runTrials(10, async (trial) => {
      const { check, violations } = violationCollector();
      const pair = await logIn(a, { ...account, password });
      const newPassword = `${account.password} ${trial}`;
      const [change, ...refreshes] = await burst(4, (i) =>
        i === 0
          ? a
              .http()
              .post('/me/password')
              .set('Authorization', `Bearer ${pair.access_token}`)
              .send({ password, secretKey: account.secretKey, newPassword })
          : a.http().post('/auth/refresh').send({ refresh_token: pair.refresh_token }),
      );
      // Two of the three refreshes lose the race and count as re-use, which revokes the login:
      // its access token may be refused before the password change is checked (401), or the
      // change finds its login ended when it writes (409), and then the password stays. Either
      // way no pair of the race may work.
      check(
        change.status === 204 ||
          ([401, 409].includes(change.status) && refreshes.some((r) => r.status === 401)),
        `the password change answered ${change.status}`,
      );
      if (change.status === 204) password = newPassword;
      for (const res of refreshes.filter((r) => r.status === 200)) {
        const me = await a
          .http()
          .get('/me')
          .set('Authorization', `Bearer ${res.body.access_token}`);
        check(me.status === 401, `a racing refresh's access token answered ${me.status}`);
        const again = await a
          .http()
          .post('/auth/refresh')
          .send({ refresh_token: res.body.refresh_token });
        check(again.status === 401, `a racing refresh's refresh token answered ${again.status}`);
      }
      return violations;
    });
    expectNoViolations(report);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// RawQuery converters
// ---------------------------------------------------------------------------------------------

describe('raw SQL attacks: RawQuery converters', () => {
  // Found by a red team (raw-query.ts, bool): only exactly 1 or true is "true". TypeORM (and so the login
  // path, AccountStore.fromState with Boolean()) reads any non-zero value as true: the hot paths
  // read a flag the login path sees as set as clear. For the disabled flag that fails open.
  it('bool() reads every value TypeORM reads as true as true (any non-zero integer)', () => {
    expect(bool(true)).toBe(true);
    expect(bool(1)).toBe(true);
    expect(bool('1')).toBe(true);
    expect(bool(false)).toBe(false);
    expect(bool(0)).toBe(false);
    expect(bool(null)).toBe(false);
    // A TINYINT(1) (MySQL/MariaDB "BOOLEAN") or SQLite integer holding 2 or -1 is true to TypeORM.
    expect(bool(2)).toBe(Boolean(2));
    expect(bool(-1)).toBe(Boolean(-1));
    expect(bool('2')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Own users table: the disabled flag as the app's column holds it
// ---------------------------------------------------------------------------------------------

/** PostgreSQL's boolean column cannot hold anything but true/false. */
const ownUsersDatabases = databases().filter((kind) => kind !== 'postgres');

describe.each(ownUsersDatabases)(
  'raw SQL attacks: own users table, disabled flag on %s',
  (kind) => {
    let database: TestDatabase;
    let app: INestApplication;
    let url: string;
    let dataSource: DataSource;
    let serial = 0;
    const PASSWORD = 'correct horse battery staple';
    const http = () => request(url);

    beforeAll(async () => {
      resetAccounts();
      database = await createTestDatabase(kind);
      app = await startApp({
        kind,
        url: database.url,
        twoFactor: {
          issuer: 'https://redteam.test',
          keys: [generateJwk('ES256', 'redteam-es256')],
          lockout: { maxAttempts: 50, seconds: 60 },
          throttle: false,
        },
      });
      const { port } = app.getHttpServer().address() as { port: number };
      url = `http://127.0.0.1:${port}`;
      dataSource = app.get<DataSource>(getDataSourceToken());
    }, 60_000);
    afterAll(async () => {
      await app?.close();
      await database?.drop();
      resetAccounts();
    });

    // Found by a red team: an application that disables a user in its own table with a truthy value other than
    // 1 (its own admin tool, another ORM or language writing 2 / -1 into the BOOLEAN/TINYINT(1)
    // column) gets a user whose logins are refused (the login reads the row with TypeORM) but
    // whose refresh tokens keep rotating and whose unseen access tokens are accepted (the hot
    // paths read the flag with `bool`).
    it('a user the login path sees as disabled gets no new tokens from a refresh', async () => {
      const email = `disabled-${kind}-${++serial}@example.test`;
      const signed = (await http().post('/users').send({ email, password: PASSWORD }).expect(201))
        .body as SignedUp;
      const pair = (
        await http()
          .post('/auth/token')
          .send({ username: email, password: PASSWORD, secretKey: signed.secretKey })
          .expect(200)
      ).body as { access_token: string; refresh_token: string };
      // The application disables the user in its own table (a truthy value TypeORM reads as true).
      await dataSource.query('UPDATE app_users SET disabled = 2 WHERE id = ?', [signed.id]);
      const relogin = await http()
        .post('/auth/token')
        .send({ username: email, password: PASSWORD, secretKey: signed.secretKey });
      expect(relogin.status).toBe(401); // the login path: disabled
      const refreshed = await http()
        .post('/auth/refresh')
        .send({ refresh_token: pair.refresh_token });
      expect(refreshed.status).toBe(401); // the hot path must agree
      // The login's access token, never seen by the guard before, must be refused too.
      const me = await http().get('/me').set('Authorization', `Bearer ${pair.access_token}`);
      expect(me.status).toBe(401);
    }, 30_000);

    it('refuses refresh and unseen access tokens of a user disabled with 1 in its own table', async () => {
      const email = `disabled1-${kind}-${++serial}@example.test`;
      const signed = (await http().post('/users').send({ email, password: PASSWORD }).expect(201))
        .body as SignedUp;
      const pair = (
        await http()
          .post('/auth/token')
          .send({ username: email, password: PASSWORD, secretKey: signed.secretKey })
          .expect(200)
      ).body as { access_token: string; refresh_token: string };
      await dataSource.query('UPDATE app_users SET disabled = 1 WHERE id = ?', [signed.id]);
      expect(
        (await http().post('/auth/refresh').send({ refresh_token: pair.refresh_token })).status,
      ).toBe(401);
      expect(
        (await http().get('/me').set('Authorization', `Bearer ${pair.access_token}`)).status,
      ).toBe(401);
    }, 30_000);
  },
);

// ---------------------------------------------------------------------------------------------
// Lockout across two instances whose clocks disagree
// ---------------------------------------------------------------------------------------------

const serverDatabases = databases().filter((kind) => kind !== 'sqlite');

describe.each(serverDatabases)(
  'raw SQL attacks: lockout across two instances with skewed clocks on %s',
  (kind) => {
    const MAX = 3;
    const BURST = 20;
    const SKEW_MS = 61_000;
    let suite: SuiteEnvironment;
    let a: RunningApp;
    let b: SpawnedApp;

    beforeAll(async () => {
      suite = await createSuiteEnvironment(kind, {
        LOCKOUT_MAX_ATTEMPTS: String(MAX),
        LOCKOUT_SECONDS: '600',
      });
      a = await startSampleApp(suite.env);
      b = await spawnSampleApp({
        ...suite.env,
        NODE_OPTIONS: `--import ${join(process.cwd(), 'test/support/skewed-clock.mjs')}`,
        TFA_TEST_CLOCK_OFFSET_MS: String(SKEW_MS),
      });
    }, 90_000);
    afterAll(async () => {
      await b?.stop();
      await a?.close();
      await suite?.cleanup();
    });

    // Found by a red team (lockout.service.ts): every lockout timestamp (in_flight_since, window_start,
    // locked_until) is the instance's own Date.now(). An instance whose clock is a minute ahead
    // takes every place held by the other instance's guesses for a place lost to a crash and
    // frees it: a burst split between the two gets more than MAX wrong guesses evaluated.
    it(`evaluates at most ${MAX} of ${BURST} parallel wrong guesses split between two instances (5 rounds)`, async () => {
      const targets: HttpTarget[] = [a, b];
      const report = await runTrials(5, async () => {
        const { check, violations } = violationCollector();
        const account = await signUp(a);
        const wrong = { ...account, password: WRONG };
        const statuses = (await burst(BURST, (i) => login(targets[i % 2], wrong))).map(
          (r) => r.status,
        );
        const counts = tally(statuses);
        check(
          (counts[401] ?? 0) <= MAX,
          `${counts[401]} wrong guesses evaluated: ${JSON.stringify(counts)}`,
        );
        return violations;
      });
      expectNoViolations(report);
    }, 120_000);
  },
);
