/**
 * An application that already had its users (test/fixtures/own-users: its own `app_users`
 * table with integer ids, its own migration, its own routes and roles) adds the module with
 * `accounts: { entity: User, fields }`. Over real HTTP, on every database: sign-up creates the
 * user and their second factor in one transaction; logins compare the normalised email; tokens
 * carry the user's id as `sub` and the app's roles as a claim; lockout, rename, disable,
 * enable, role changes and deletion behave as with the module's own accounts, and a delete
 * leaves no row of the module behind.
 */
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ACCESS_TOKEN_TYP, TotpService } from 'nestjs-rest-2fa';
import { startApp, type AppConfig } from '../fixtures/own-users/app.module.js';
import { User } from '../fixtures/own-users/user.entity.js';
import { UsersService, type SignedUp } from '../fixtures/own-users/users.service.js';
import { generateJwk } from '../support/keys.js';
import { moduleRowsOf } from '../support/own-accounts.js';
import { burst, tally } from '../support/race.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';
import { base32Decode, freshStep, totpAt } from '../support/totp.js';

const ISSUER = 'https://own-users.test';
const SIGNING_KEY = generateJwk('ES256', 'own-users-es256');
const PASSWORD = 'correct horse battery staple';
const MAX_ATTEMPTS = 3;
const LOCK_SECONDS = 120;
const BURST = 20;
const DOMAIN = '@example.test';

/** The module's options of the app under test (the fixture adds `accounts` and `claims`). */
const TWO_FACTOR: AppConfig['twoFactor'] = {
  issuer: ISSUER,
  keys: [SIGNING_KEY],
  lockout: { maxAttempts: MAX_ATTEMPTS, seconds: LOCK_SECONDS },
  // Every request comes from 127.0.0.1: the per-client throttle would answer 429 before
  // the lockout is reached. The lockout (per username) is what these tests are about.
  throttle: false,
  totp: { encryptionKeys: [{ id: 'totp-1', key: randomBytes(32).toString('base64') }] },
};

interface Pair {
  access_token: string;
  refresh_token: string;
}

/** The base URL of an app listening on 127.0.0.1. */
function urlOf(app: INestApplication): string {
  const { port } = app.getHttpServer().address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

describe.each(databases())('an application with its own users table, on %s', (kind) => {
  let database: TestDatabase;
  let app: INestApplication;
  let url: string;
  let dataSource: DataSource;
  /** An access token of a user with the `admin` role. */
  let adminToken: string;
  let adminId: number;
  let serial = 0;

  const http = () => request(url);
  /** A new address per call, so that no test shares a username (or its lockout) with another. */
  const newEmail = (tag: string) => `${tag}-${kind}-${++serial}${DOMAIN}`;
  const users = () => dataSource.getRepository(User);

  const signUp = async (email = newEmail('user')): Promise<SignedUp> => {
    const res = await http().post('/users').send({ email, password: PASSWORD });
    expect(res.status).toBe(201);
    return res.body as SignedUp;
  };
  const logIn = (username: string, secretKey: string, password = PASSWORD) =>
    http().post('/auth/token').send({ username, password, secretKey });
  const logInOk = async (user: SignedUp): Promise<Pair> => {
    const res = await logIn(user.email, user.secretKey);
    expect(res.status).toBe(200);
    return res.body as Pair;
  };
  const get = (path: string, token: string) =>
    http().get(path).set('Authorization', `Bearer ${token}`);
  const asAdmin = (method: 'post' | 'put' | 'patch' | 'delete', path: string) =>
    http()[method](path).set('Authorization', `Bearer ${adminToken}`);
  const refresh = (refreshToken: string) =>
    http().post('/auth/refresh').send({ refresh_token: refreshToken });

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    app = await startApp({ kind, url: database.url, twoFactor: TWO_FACTOR });
    url = urlOf(app);
    dataSource = app.get<DataSource>(getDataSourceToken());
    // The first administrator is made in the database, as an operator would.
    const admin = await signUp(newEmail('admin'));
    await users().update({ id: admin.id }, { roles: ['user', 'admin'] });
    adminId = admin.id;
    adminToken = (await logInOk(admin)).access_token;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('signs up the user and their secret key in one transaction, keyed by the integer id', async () => {
    const typed = `  New.User-${kind}-${++serial}${DOMAIN.toUpperCase()} `;
    const res = await http().post('/users').send({ email: typed, password: PASSWORD });
    expect(res.status).toBe(201);
    const { id, email, secretKey } = res.body as SignedUp;
    expect(typeof id).toBe('number');
    expect(email).toBe(typed.trim().toLowerCase());
    expect(secretKey).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const row = await users().findOneByOrFail({ id });
    expect(row).toMatchObject({
      email,
      disabled: false,
      roles: ['user'],
      displayName: typed.trim(),
    });
    expect(row.passwordHash).toMatch(/^\$argon2id\$/);
    expect(await moduleRowsOf(dataSource, id)).toEqual({
      tfa_account_states: 1,
      tfa_secret_keys: 1,
      tfa_issued_tokens: 0,
      tfa_token_families: 0,
      tfa_totp_credentials: 0,
      tfa_recovery_codes: 0,
    });
    // The same address in another spelling is the same login name: taken.
    const again = await http()
      .post('/users')
      .send({ email: email.toUpperCase(), password: PASSWORD });
    expect(again.status).toBe(409);
  });

  it('leaves no orphan when the sign-up transaction fails after enrol', async () => {
    const email = newEmail('rolled-back');
    const statesBefore = await dataSource.query('SELECT COUNT(*) AS n FROM tfa_account_states');
    let enrolledId: number | undefined;
    const service = app.get(UsersService);
    await expect(
      service.signUp(email, PASSWORD, async (manager, user) => {
        enrolledId = user.id;
        // Inside the transaction, the user has their module state and secret key…
        const inside = await manager.query(
          `SELECT COUNT(*) AS n FROM tfa_secret_keys WHERE account_id = ${Number(user.id)}`,
        );
        expect(Number(inside[0].n)).toBe(1);
        // …and then the application's own next step fails.
        throw new Error('the welcome mail outbox is down');
      }),
    ).rejects.toThrow('the welcome mail outbox is down');

    expect(enrolledId).toEqual(expect.any(Number));
    expect(await users().countBy({ email })).toBe(0);
    expect(await users().countBy({ id: enrolledId })).toBe(0);
    expect(await moduleRowsOf(dataSource, enrolledId!)).toMatchObject({
      tfa_account_states: 0,
      tfa_secret_keys: 0,
    });
    const statesAfter = await dataSource.query('SELECT COUNT(*) AS n FROM tfa_account_states');
    expect(Number(statesAfter[0].n)).toBe(Number(statesBefore[0].n));
    // Nothing blocks the address: the sign-up works when tried again.
    const retried = await signUp(email);
    expect(retried.email).toBe(email);
    expect((await logIn(email, retried.secretKey)).status).toBe(200);
  });

  it('accepts a 254-character email address and refuses 255, at sign-up and rename; logs in with any case and spacing', async () => {
    const ofLength = (length: number, tag: string) => {
      const local = `${tag}-${kind}-${++serial}-`;
      return `${local}${'x'.repeat(length - local.length - DOMAIN.length)}${DOMAIN}`;
    };
    const long = ofLength(254, 'Long');
    expect(long).toHaveLength(254);
    const user = await signUp(long);
    expect(user.email).toBe(long.toLowerCase());
    expect((await users().findOneByOrFail({ id: user.id })).email).toHaveLength(254);

    const tooLong = ofLength(255, 'long');
    const refused = await http().post('/users').send({ email: tooLong, password: PASSWORD });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toBe('username must be 3 to 254 characters long');
    expect(await users().countBy({ email: tooLong })).toBe(0);

    // The login name is compared normalised: other case, surrounding spaces (the login
    // route takes up to 256 characters as typed).
    const login = await logIn(` ${long.toUpperCase()} `, user.secretKey);
    expect(login.status).toBe(200);
    const { access_token } = login.body as Pair;
    expect((await get('/me', access_token)).body.username).toBe(long.toLowerCase());

    const renamedTooLong = await http()
      .patch('/me/email')
      .set('Authorization', `Bearer ${access_token}`)
      .send({ email: ofLength(255, 'rename') });
    expect(renamedTooLong.status).toBe(400);
    expect(renamedTooLong.body.message).toBe('username must be 3 to 254 characters long');
    const otherLong = ofLength(254, 'Rename');
    const renamed = await http()
      .patch('/me/email')
      .set('Authorization', `Bearer ${access_token}`)
      .send({ email: otherLong });
    expect(renamed.status).toBe(204);
    expect((await users().findOneByOrFail({ id: user.id })).email).toBe(otherLong.toLowerCase());
    expect((await logIn(otherLong, user.secretKey)).status).toBe(200);
  });

  it('issues tokens whose sub is the user id and which carry the roles; guarded routes read them', async () => {
    const user = await signUp();
    const { access_token } = await logInOk(user);

    const jwks = await http().get('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    const keySet = jwks.body as JSONWebKeySet;
    expect(keySet.keys.map((k) => [k.kid, 'd' in k])).toEqual([['own-users-es256', false]]);
    const { payload, protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(keySet), {
      issuer: ISSUER,
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toMatchObject({ typ: ACCESS_TOKEN_TYP, kid: 'own-users-es256' });
    expect(payload.sub).toBe(String(user.id));
    expect(payload.roles).toEqual(['user']);

    const me = await get('/me', access_token);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ id: String(user.id), username: user.email, roles: ['user'] });

    expect((await get('/admin', access_token)).status).toBe(403);
    const admin = await get('/admin', adminToken);
    expect(admin.status).toBe(200);
    expect(admin.body).toEqual({ admin: String(adminId) });
    expect((await http().get('/admin')).status).toBe(401);
    // A user cannot manage users either.
    const selfPromotion = await http()
      .put(`/users/${user.id}/roles`)
      .set('Authorization', `Bearer ${access_token}`)
      .send({ roles: ['admin'] });
    expect(selfPromotion.status).toBe(403);
    expect((await users().findOneByOrFail({ id: user.id })).roles).toEqual(['user']);
  });

  it('answers a wrong password, a wrong secret key and an unknown email with the same 401', async () => {
    const user = await signUp();
    const other = await signUp();
    const wrongPassword = await logIn(user.email, user.secretKey, 'not the password at all');
    const wrongKey = await logIn(user.email, other.secretKey);
    const unknown = await logIn(newEmail('nobody'), user.secretKey);
    for (const res of [wrongPassword, wrongKey, unknown]) {
      expect(res.status).toBe(401);
      expect(res.body.access_token).toBeUndefined();
    }
    expect(wrongPassword.body).toEqual({
      statusCode: 401,
      message: 'Invalid credentials',
      error: 'Unauthorized',
    });
    expect(wrongKey.body).toEqual(wrongPassword.body);
    expect(unknown.body).toEqual(wrongPassword.body);
  });

  it(`locks the email after ${BURST} parallel wrong logins (maxAttempts ${MAX_ATTEMPTS})`, async () => {
    const user = await signUp();
    const statuses = (
      await burst(BURST, () => logIn(user.email, user.secretKey, 'not the password at all'))
    ).map((res) => res.status);
    expect(tally(statuses)).toEqual({ 401: MAX_ATTEMPTS, 429: BURST - MAX_ATTEMPTS });

    // Locked: the right factors are refused too, under any spelling of the address.
    for (const username of [user.email, ` ${user.email.toUpperCase()}`]) {
      const res = await logIn(username, user.secretKey);
      expect(res.status).toBe(429);
      expect(res.body.access_token).toBeUndefined();
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(LOCK_SECONDS);
    }
  });

  it('renames: the old address no longer logs in, the new one does; a taken one answers 409', async () => {
    const user = await signUp();
    const other = await signUp();
    const { access_token } = await logInOk(user);
    const newAddress = newEmail('Renamed');

    const renamed = await http()
      .patch('/me/email')
      .set('Authorization', `Bearer ${access_token}`)
      .send({ email: ` ${newAddress} ` });
    expect(renamed.status).toBe(204);
    expect((await users().findOneByOrFail({ id: user.id })).email).toBe(newAddress.toLowerCase());
    expect((await logIn(user.email, user.secretKey)).status).toBe(401);
    expect((await logIn(newAddress, user.secretKey)).status).toBe(200);
    // The token carries the id, not the name: it stays valid.
    const stillValid = await get('/me', access_token);
    expect(stillValid.status).toBe(200);
    expect(stillValid.body.id).toBe(String(user.id));
    const fresh = await logInOk({ ...user, email: newAddress });
    expect((await get('/me', fresh.access_token)).body.username).toBe(newAddress.toLowerCase());

    const taken = await http()
      .patch('/me/email')
      .set('Authorization', `Bearer ${access_token}`)
      .send({ email: other.email.toUpperCase() });
    expect(taken.status).toBe(409);
    expect((await users().findOneByOrFail({ id: user.id })).email).toBe(newAddress.toLowerCase());
    expect((await users().findOneByOrFail({ id: other.id })).email).toBe(other.email);
    expect((await logIn(other.email, other.secretKey)).status).toBe(200);
  });

  it('disables: the live access token is refused at once, and the login; enable lets it log in again', async () => {
    const user = await signUp();
    const { access_token, refresh_token } = await logInOk(user);
    expect((await get('/me', access_token)).status).toBe(200);

    expect((await asAdmin('post', `/users/${user.id}/disable`)).status).toBe(204);
    expect((await users().findOneByOrFail({ id: user.id })).disabled).toBe(true);
    expect((await get('/me', access_token)).status).toBe(401);
    expect((await refresh(refresh_token)).status).toBe(401);
    const refused = await logIn(user.email, user.secretKey);
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual({
      statusCode: 401,
      message: 'Invalid credentials',
      error: 'Unauthorized',
    });

    expect((await asAdmin('post', `/users/${user.id}/enable`)).status).toBe(204);
    expect((await users().findOneByOrFail({ id: user.id })).disabled).toBe(false);
    const again = await logInOk(user);
    expect((await get('/me', again.access_token)).status).toBe(200);
    // The tokens of before the disable stay revoked.
    expect((await get('/me', access_token)).status).toBe(401);
    expect((await asAdmin('post', '/users/999999/disable')).status).toBe(404);
  });

  it('puts changed roles in the next refreshed token; the old access token keeps the old roles', async () => {
    const user = await signUp();
    const first = await logInOk(user);
    expect((await get('/admin', first.access_token)).status).toBe(403);

    const put = await asAdmin('put', `/users/${user.id}/roles`).send({ roles: ['user', 'admin'] });
    expect(put.status).toBe(204);
    expect((await users().findOneByOrFail({ id: user.id })).roles).toEqual(['user', 'admin']);

    const refreshed = await refresh(first.refresh_token);
    expect(refreshed.status).toBe(200);
    const second = refreshed.body as Pair;
    expect(decodeJwt(second.access_token)).toMatchObject({
      sub: String(user.id),
      roles: ['user', 'admin'],
    });
    expect((await get('/admin', second.access_token)).status).toBe(200);
    expect((await get('/me', second.access_token)).body.roles).toEqual(['user', 'admin']);

    // The access token issued before the change still says what it said, until it expires.
    expect(decodeJwt(first.access_token).roles).toEqual(['user']);
    const old = await get('/me', first.access_token);
    expect(old.status).toBe(200);
    expect(old.body.roles).toEqual(['user']);
    expect((await get('/admin', first.access_token)).status).toBe(403);
  });

  it('deletes: the tokens are refused at once and no row of the module is left for the account', async () => {
    const totp = app.get(TotpService);
    // One user logs in with their secret key and has a TOTP enrolment pending…
    const keyUser = await signUp();
    const keyPair = await logInOk(keyUser);
    await totp.begin(String(keyUser.id));
    // …the other has switched to TOTP (recovery codes instead of a secret key) and logs in
    // with a recovery code.
    const totpUser = await signUp();
    const { secret } = await totp.begin(String(totpUser.id));
    const step = await freshStep(2);
    const recoveryCodes = await totp.confirm(
      String(totpUser.id),
      totpAt(base32Decode(secret), step),
    );
    const totpLogin = await http()
      .post('/auth/token')
      .send({ username: totpUser.email, password: PASSWORD, recoveryCode: recoveryCodes[0] });
    expect(totpLogin.status).toBe(200);
    const totpPair = totpLogin.body as Pair;

    expect(await moduleRowsOf(dataSource, keyUser.id)).toEqual({
      tfa_account_states: 1,
      tfa_secret_keys: 1,
      tfa_issued_tokens: 2,
      tfa_token_families: 1,
      tfa_totp_credentials: 1,
      tfa_recovery_codes: 0,
    });
    expect(await moduleRowsOf(dataSource, totpUser.id)).toEqual({
      tfa_account_states: 1,
      tfa_secret_keys: 0,
      tfa_issued_tokens: 2,
      tfa_token_families: 1,
      tfa_totp_credentials: 1,
      tfa_recovery_codes: recoveryCodes.length,
    });

    for (const [user, pair] of [
      [keyUser, keyPair],
      [totpUser, totpPair],
    ] as const) {
      expect((await get('/me', pair.access_token)).status).toBe(200);
      expect((await asAdmin('delete', `/users/${user.id}`)).status).toBe(204);
      expect((await get('/me', pair.access_token)).status).toBe(401);
      expect((await refresh(pair.refresh_token)).status).toBe(401);
      expect(await users().countBy({ id: user.id })).toBe(0);
      expect(await moduleRowsOf(dataSource, user.id)).toEqual({
        tfa_account_states: 0,
        tfa_secret_keys: 0,
        tfa_issued_tokens: 0,
        tfa_token_families: 0,
        tfa_totp_credentials: 0,
        tfa_recovery_codes: 0,
      });
      expect((await logIn(user.email, user.secretKey)).status).toBe(401);
      expect((await asAdmin('delete', `/users/${user.id}`)).status).toBe(404);
    }
    // The address is free again, for a new user with a new id.
    const reborn = await signUp(keyUser.email);
    expect(reborn.id).not.toBe(keyUser.id);
    expect((await logIn(keyUser.email, reborn.secretKey)).status).toBe(200);
  });

  it('fails the token request, issuing nothing, when the claims hook returns a registered claim', async () => {
    const user = await signUp();
    // The same application, deployed with a claims hook that sets `sub` (an application bug).
    const faulty = await startApp({
      kind,
      url: database.url,
      twoFactor: { ...TWO_FACTOR, claims: (row: User) => ({ sub: 'x', roles: row.roles }) },
    });
    try {
      const faultyUrl = urlOf(faulty);
      const res = await request(faultyUrl)
        .post('/auth/token')
        .send({ username: user.email, password: PASSWORD, secretKey: user.secretKey });
      // An application bug, not the client's, and not worth a retry: 500, saying nothing more.
      expect(res.status).toBe(500);
      expect(res.body).toEqual({
        statusCode: 500,
        message: 'Internal server error',
        error: 'Internal Server Error',
      });
      expect(res.body.access_token).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toMatch(/eyJ/);
      expect(await moduleRowsOf(dataSource, user.id)).toMatchObject({
        tfa_issued_tokens: 0,
        tfa_token_families: 0,
      });

      // A refresh on the faulty deployment issues nothing either.
      const pair = await logInOk(user);
      const refreshed = await request(faultyUrl)
        .post('/auth/refresh')
        .send({ refresh_token: pair.refresh_token });
      expect(refreshed.status).toBe(500);
      expect(refreshed.body.access_token).toBeUndefined();
      expect((await moduleRowsOf(dataSource, user.id)).tfa_issued_tokens).toBe(2);
    } finally {
      await faulty.close();
    }
    // The correct deployment is unaffected.
    expect((await logIn(user.email, user.secretKey)).status).toBe(200);
  });
});
