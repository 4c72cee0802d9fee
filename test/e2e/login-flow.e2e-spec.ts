import { createLocalJWKSet, jwtVerify, decodeJwt, decodeProtectedHeader } from 'jose';
import { setups } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

describe.each(setups())('login flow on %s with %s', (kind, adapter) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, { HTTP_ADAPTER: adapter });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('creates an account, logs in with a JSON body and reads /me', async () => {
    const account = await signUp(running, 'Alice.Flow');
    expect(account.secretKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const pair = await logIn(running, { ...account, username: '  alice.flow ' });
    const me = await running
      .http()
      .get('/me')
      .set('Authorization', `Bearer ${pair.access_token}`)
      .expect(200);
    expect(me.body).toEqual({ id: account.id, username: 'Alice.Flow' });
  });

  it('logs in with Basic credentials and X-Secret-Key', async () => {
    const account = await signUp(running);
    const res = await running
      .http()
      .post('/auth/token')
      .auth(account.username, account.password)
      .set('X-Secret-Key', account.secretKey)
      .expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      refresh_token: expect.any(String),
      refresh_expires_in: 604800,
    });
    await running
      .http()
      .get('/me')
      .set('Authorization', `Bearer ${res.body.access_token}`)
      .expect(200);
  });

  it('answers every wrong factor with one identical 401 body', async () => {
    const account = await signUp(running);
    const other = await signUp(running);
    const attempts = [
      { username: account.username, password: 'wrong password!', secretKey: account.secretKey },
      { username: account.username, password: account.password, secretKey: other.secretKey },
      { username: account.username, password: account.password },
      { username: 'nobody-at-all', password: account.password, secretKey: account.secretKey },
    ];
    const bodies = new Set<string>();
    for (const attempt of attempts) {
      const res = await running.http().post('/auth/token').send(attempt).expect(401);
      bodies.add(JSON.stringify(res.body));
    }
    expect([...bodies]).toEqual([
      JSON.stringify({ statusCode: 401, message: 'Invalid credentials', error: 'Unauthorized' }),
    ]);
  });

  it('refuses malformed bodies with 400 and no token', async () => {
    const bad: unknown[] = [
      {},
      { username: 5, password: 'x' },
      { username: 'a', extra: 1 },
      ['username'],
      { username: 'a'.repeat(300) },
    ];
    for (const body of bad) {
      const res = await running
        .http()
        .post('/auth/token')
        .send(body as object);
      expect(res.status).toBe(400);
      expect(res.body.access_token).toBeUndefined();
    }
    const broken = await running
      .http()
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .send('{"username":');
    expect(broken.status).toBe(400);
    expect(JSON.stringify(broken.body)).not.toMatch(/JSON|Unexpected|position/);
  });

  it('issues a token that jose verifies against the published JWKS', async () => {
    const account = await signUp(running);
    const pair = await logIn(running, account);
    const jwks = await running.http().get('/.well-known/jwks.json').expect(200);
    for (const key of jwks.body.keys) {
      expect(key).not.toHaveProperty('d');
    }
    const { payload, protectedHeader } = await jwtVerify(
      pair.access_token,
      createLocalJWKSet(jwks.body),
      {
        issuer: 'https://issuer.test',
        typ: 'at+jwt',
        algorithms: ['ES256'],
      },
    );
    expect(protectedHeader.kid).toBe('suite-es256');
    expect(payload).toEqual({
      iss: 'https://issuer.test',
      sub: account.id,
      iat: expect.any(Number),
      nbf: expect.any(Number),
      exp: (payload.iat as number) + 900,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      // The sample app's own claim (the `claims` option); the refresh token carries none.
      roles: ['user'],
    });
    expect(decodeProtectedHeader(pair.refresh_token).typ).toBe('rt+jwt');
    expect(decodeJwt(pair.refresh_token).roles).toBeUndefined();
  });

  it('refuses a tampered token with 401 and WWW-Authenticate', async () => {
    const account = await signUp(running);
    const { access_token } = await logIn(running, account);
    const [h, p, s] = access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`;
    for (const token of [forged, `${h}.${p}.`, `${h}.${p}`, 'garbage', access_token.slice(0, -2)]) {
      const res = await running.http().get('/me').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
    await running.http().get('/me').expect(401);
  });

  it('does not store the secret key or the password in plain text', async () => {
    const account = await signUp(running);
    const rows = await running.dataSource.query('SELECT * FROM tfa_secret_keys');
    const accounts = await running.dataSource.query('SELECT * FROM tfa_accounts');
    const dump = JSON.stringify([rows, accounts]);
    expect(dump).not.toContain(account.secretKey);
    expect(dump).not.toContain(account.password);
    expect(dump).toMatch(/\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});
