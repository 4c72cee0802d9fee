/**
 * Re-authentication (DESIGN.md, ASVS 5.0 7.5.1) on every sensitive route of the sample app:
 * a bearer token alone, a wrong password, a wrong second factor or another account's factors
 * change nothing (401, the login's failure body); wrong re-authentications count toward the
 * lockout (LOCKOUT_MAX_ATTEMPTS=3), bursts included; a malformed body answers 400 before any
 * factor is checked, so it spends neither an attempt nor a recovery code; a pending TOTP
 * enrolment expires (TOTP_ENROLMENT_TTL=3).
 */
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { burst, sleep, tally } from '../support/race.js';
import { databases } from '../support/servers.js';
import { base32Decode, enrolTotp, freshStep, totpAt, type TotpAccount } from '../support/totp.js';

const MAX_ATTEMPTS = 3;
const ENROLMENT_TTL = 3;
const TOTP_KEY = 'suite:' + Buffer.alloc(32, 9).toString('base64');
const INVALID = { statusCode: 401, message: 'Invalid credentials', error: 'Unauthorized' };
const WRONG_PASSWORD = 'not the password at all';
const NEW_PASSWORD = 'a brand new passphrase';

/** A route guarded by re-authentication: its own fields beside the factors, its success. */
interface Route {
  method: 'post' | 'delete';
  path: string;
  fields: Record<string, string>;
  success: number;
}

/** The routes of a secret-key account. */
const KEY_ROUTES: Route[] = [
  { method: 'post', path: '/me/secret-key', fields: {}, success: 200 },
  { method: 'post', path: '/me/password', fields: { newPassword: NEW_PASSWORD }, success: 204 },
  { method: 'delete', path: '/me', fields: {}, success: 204 },
  { method: 'post', path: '/me/totp', fields: {}, success: 200 },
];

/** The routes of a TOTP account. */
const TOTP_ROUTES: Route[] = [
  { method: 'delete', path: '/me/totp', fields: {}, success: 200 },
  { method: 'post', path: '/me/totp/recovery-codes', fields: {}, success: 200 },
];

describe.each(databases())('re-authentication on %s', (kind) => {
  let suite: SuiteEnvironment;
  let app: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOCKOUT_SECONDS: '120',
      TOTP_ENCRYPTION_KEYS: TOTP_KEY,
      TOTP_ENROLMENT_TTL: String(ENROLMENT_TTL),
    });
    app = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await app?.close();
    await suite?.cleanup();
  });

  function call(route: Route, accessToken: string, body?: unknown) {
    const req = app.http()[route.method](route.path).set('Authorization', `Bearer ${accessToken}`);
    return body === undefined ? req : req.send(body as object);
  }

  function login(body: object) {
    return app.http().post('/auth/token').send(body);
  }

  async function totpStatus(accessToken: string) {
    const res = await app
      .http()
      .get('/me/totp')
      .set('Authorization', `Bearer ${accessToken}`)
      .expect(200);
    return res.body as { enabled: boolean; pending: boolean; recoveryCodesRemaining: number };
  }

  describe.each(KEY_ROUTES)('$method $path (secret-key account)', (route) => {
    it('refuses a bearer token alone, a wrong password, a wrong key and another account’s factors, changing nothing', async () => {
      const account = await signUp(app);
      const other = await signUp(app);
      const { password, secretKey } = account;
      const { access_token } = await logIn(app, account);
      const refusals: [string, object | undefined, number][] = [
        // Without a body the route's own field is missing too: 400 where it has one.
        ['no body', undefined, route.path === '/me/password' ? 400 : 401],
        ['no factors', { ...route.fields }, 401],
        ['the password alone', { password, ...route.fields }, 401],
        ['the secret key alone', { secretKey, ...route.fields }, 401],
        ['a wrong password', { password: WRONG_PASSWORD, secretKey, ...route.fields }, 401],
        ['a wrong secret key', { password, secretKey: other.secretKey, ...route.fields }, 401],
        ['a TOTP code instead of the key', { password, otp: '123456', ...route.fields }, 401],
        [
          'another account’s factors',
          { password: other.password, secretKey: other.secretKey, ...route.fields },
          401,
        ],
      ];
      for (const [what, body, status] of refusals) {
        const res = await call(route, access_token, body);
        expect({ what, status: res.status }).toEqual({ what, status });
        if (status === 401) {
          expect(res.body).toEqual(INVALID);
          expect(res.headers['retry-after']).toBeUndefined();
        }
        // Nothing changed (the password, the key, the account, the token all still work), and
        // the successful login forgets the failure, so the next case is not locked out.
        await logIn(app, account);
        expect(
          (await app.http().get('/me').set('Authorization', `Bearer ${access_token}`)).status,
        ).toBe(200);
      }
      // The other account was not touched either.
      await logIn(app, other);
      // The right factors do it.
      const res = await call(route, access_token, { password, secretKey, ...route.fields });
      expect(res.status).toBe(route.success);
    });

    it('counts a burst of 10 wrong re-authentications: at most 3 evaluated, then locked', async () => {
      const account = await signUp(app);
      const { password, secretKey } = account;
      const { access_token } = await logIn(app, account);
      const wrong = { password: WRONG_PASSWORD, secretKey, ...route.fields };
      const statuses = (await burst(10, () => call(route, access_token, wrong))).map(
        (r) => r.status,
      );
      const counts = tally(statuses);
      expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
      expect(counts[401] ?? 0).toBeLessThanOrEqual(MAX_ATTEMPTS);
      // Locked: the right factors here, and the login, answer 429 with Retry-After.
      const right = await call(route, access_token, { password, secretKey, ...route.fields });
      expect(right.status).toBe(429);
      expect(Number(right.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const res = await login({ username: account.username, password, secretKey });
      expect(res.status).toBe(429);
    });

    it('answers 400 to malformed bodies before checking any factor: no attempt is spent', async () => {
      const account = await signUp(app);
      const { password, secretKey } = account;
      const { access_token } = await logIn(app, account);
      // Each carries a wrong password: were it checked, it would count, and 3 lock.
      const wrong = { password: WRONG_PASSWORD, secretKey, ...route.fields };
      const malformed: [string, unknown][] = [
        ['an unknown field', { ...wrong, isAdmin: true }],
        ['a prototype key', JSON.parse(`{"__proto__":{"x":1},"password":"${WRONG_PASSWORD}"}`)],
        ['a number as password', { ...wrong, password: 12345678 }],
        ['an array as secret key', { ...wrong, secretKey: [secretKey] }],
        ['an object as password', { ...wrong, password: { $ne: '' } }],
        ['letters as otp', { password: WRONG_PASSWORD, otp: 'abcdef', ...route.fields }],
        ['a password of 2000 characters', { ...wrong, password: 'x'.repeat(2000) }],
        ['a control character in the key', { ...wrong, secretKey: 'a\u0001b' }],
        ['an array body', [wrong]],
      ];
      if (route.path === '/me/password') {
        malformed.push(['a new password too short', { ...wrong, newPassword: 'short' }]);
        malformed.push(['a number as new password', { ...wrong, newPassword: 123456789 }]);
      }
      for (const [what, body] of malformed) {
        const res = await call(route, access_token, body);
        expect({ what, status: res.status }).toEqual({ what, status: 400 });
      }
      // Two real failures still fit under the limit of 3: nothing above was counted.
      for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
        await call(route, access_token, wrong).expect(401);
      }
      const res = await call(route, access_token, { password, secretKey, ...route.fields });
      expect(res.status).toBe(route.success);
    });
  });

  describe('TOTP account', () => {
    async function totpAccount(): Promise<TotpAccount> {
      return enrolTotp(app, await signUp(app));
    }

    it.each(TOTP_ROUTES)(
      '$method $path refuses a bearer token alone, wrong factors and another account’s, spending no code',
      async (route) => {
        const t = await totpAccount();
        const other = await signUp(app);
        const { password, recoveryCodes } = t;
        // A code far from now is valid for no step anyone will use.
        const wrongOtp = totpAt(t.secret, t.step + 40);
        const refusals: [string, object | undefined][] = [
          ['no body', undefined],
          ['the password alone', { password }],
          ['a recovery code alone', { recoveryCode: recoveryCodes[0] }],
          [
            'a wrong password with a valid recovery code',
            { password: WRONG_PASSWORD, recoveryCode: recoveryCodes[0] },
          ],
          ['a wrong code', { password, otp: wrongOtp }],
          ['a wrong recovery code', { password, recoveryCode: 'AAAAA-BBBBB-CCCCC-DDDDD-EEEEE' }],
          ['the former secret key', { password, secretKey: t.formerSecretKey }],
          ['another account’s factors', { password: other.password, secretKey: other.secretKey }],
        ];
        // Every other refusal, a login with one of these codes forgets the failures.
        const loginCodes = recoveryCodes.slice(1, 9);
        let spent = 1; // the last code, by enrolTotp
        for (const [i, [what, body]] of refusals.entries()) {
          const res = await call(route, t.accessToken, body);
          expect({ what, status: res.status }).toEqual({ what, status: 401 });
          expect(res.body).toEqual(INVALID);
          if (i % 2 === 1) {
            const recoveryCode = loginCodes.shift();
            await login({ username: t.username, password, recoveryCode }).expect(200);
            spent++;
          }
        }
        // Nothing changed: TOTP is on, the token works, and only the codes used to log in are
        // spent; the valid code sent with a wrong password or alone was not, and now works.
        expect(await totpStatus(t.accessToken)).toEqual({
          enabled: true,
          pending: false,
          recoveryCodesRemaining: 10 - spent,
        });
        const res = await call(route, t.accessToken, { password, recoveryCode: recoveryCodes[0] });
        expect(res.status).toBe(route.success);
      },
    );

    it.each(TOTP_ROUTES)(
      '$method $path counts a burst of 10 wrong codes: at most 3 evaluated, then locked',
      async (route) => {
        const t = await totpAccount();
        const wrong = { password: t.password, otp: totpAt(t.secret, t.step + 40) };
        const statuses = (await burst(10, () => call(route, t.accessToken, wrong))).map(
          (r) => r.status,
        );
        expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
        expect(tally(statuses)[401] ?? 0).toBeLessThanOrEqual(MAX_ATTEMPTS);
        const right = await call(route, t.accessToken, {
          password: t.password,
          recoveryCode: t.recoveryCodes[0],
        });
        expect(right.status).toBe(429);
        expect(Number(right.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        // Refused before any check: the code was not spent.
        expect((await totpStatus(t.accessToken)).recoveryCodesRemaining).toBe(9);
      },
    );

    it.each(TOTP_ROUTES)(
      '$method $path answers 400 to a malformed body carrying a valid recovery code, and spends neither the code nor an attempt',
      async (route) => {
        const t = await totpAccount();
        const code = t.recoveryCodes[0];
        const malformed: [string, unknown][] = [
          ['an unknown field', { password: t.password, recoveryCode: code, extra: 1 }],
          ['a number as password', { password: 42, recoveryCode: code }],
          ['an array as otp', { password: t.password, recoveryCode: code, otp: ['1'] }],
          ['letters as otp', { password: t.password, recoveryCode: code, otp: 'abcdef' }],
          [
            'a recovery code of 100 characters',
            { password: t.password, recoveryCode: code + 'x'.repeat(80) },
          ],
        ];
        for (let round = 0; round < 2; round++) {
          for (const [what, body] of malformed) {
            const res = await call(route, t.accessToken, body);
            expect({ what, status: res.status }).toEqual({ what, status: 400 });
          }
        }
        expect((await totpStatus(t.accessToken)).recoveryCodesRemaining).toBe(9);
        // Two real failures fit under the limit: nothing above was counted.
        for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
          await call(route, t.accessToken, { password: WRONG_PASSWORD, recoveryCode: code }).expect(
            401,
          );
        }
        const res = await call(route, t.accessToken, { password: t.password, recoveryCode: code });
        expect(res.status).toBe(route.success);
      },
    );
  });

  describe(`TOTP enrolment (TOTP_ENROLMENT_TTL=${ENROLMENT_TTL})`, () => {
    it('expires: a code for a secret older than the TTL is refused with 404 and nothing switches', async () => {
      const account = await signUp(app);
      const { password, secretKey } = account;
      const { access_token } = await logIn(app, account);
      const auth = { Authorization: `Bearer ${access_token}` };
      const started = await app
        .http()
        .post('/me/totp')
        .set(auth)
        .send({ password, secretKey })
        .expect(200);
      const secret = base32Decode(started.body.secret);
      expect(await totpStatus(access_token)).toMatchObject({ enabled: false, pending: true });

      await sleep(ENROLMENT_TTL * 1000 + 300);
      expect(await totpStatus(access_token)).toMatchObject({ enabled: false, pending: false });
      const step = await freshStep();
      const late = await app
        .http()
        .post('/me/totp/confirm')
        .set(auth)
        .send({ otp: totpAt(secret, step) });
      expect(late.status).toBe(404);
      // Still a secret-key account: the key logs in, a code of that secret does not.
      await login({ username: account.username, password, otp: totpAt(secret, step) }).expect(401);
      const again = await logIn(app, account);

      // Started again, and confirmed in time, it switches (the TTL is not simply too short).
      const step2 = await freshStep();
      const restarted = await app
        .http()
        .post('/me/totp')
        .set({ Authorization: `Bearer ${again.access_token}` })
        .send({ password, secretKey })
        .expect(200);
      const secret2 = base32Decode(restarted.body.secret);
      await app
        .http()
        .post('/me/totp/confirm')
        .set({ Authorization: `Bearer ${again.access_token}` })
        .send({ otp: totpAt(secret2, step2) })
        .expect(200);
      await login({ username: account.username, password, secretKey }).expect(401);
    });
  });
});
