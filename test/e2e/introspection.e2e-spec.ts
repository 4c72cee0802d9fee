import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const CLIENT = { id: 'orders-api', secret: 'a-long-introspection-secret-of-40-chars!!' };

// Introspection does not depend on the database dialect beyond what the other suites cover.
describe('token introspection (RFC 7662)', () => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      INTROSPECTION_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`,
      ACCESS_TOKEN_TTL: '10',
    });
    running = await startSampleApp(suite.env, ['error', 'warn']);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  const introspect = (token: string, auth: [string, string] = [CLIENT.id, CLIENT.secret]) =>
    running
      .http()
      .post('/auth/introspect')
      .auth(...auth)
      .send({ token });

  it('describes a live access token and a live refresh token', async () => {
    const account = await signUp(running);
    const pair = await logIn(running, account);
    const access = await introspect(pair.access_token).expect(200);
    expect(access.headers['cache-control']).toBe('no-store');
    expect(access.body).toEqual({
      active: true,
      token_type: 'access_token',
      sub: account.id,
      username: account.username,
      iss: 'https://issuer.test',
      jti: expect.any(String),
      iat: expect.any(Number),
      nbf: expect.any(Number),
      exp: expect.any(Number),
    });
    const refresh = await introspect(pair.refresh_token).expect(200);
    expect(refresh.body).toMatchObject({
      active: true,
      token_type: 'refresh_token',
      sub: account.id,
    });
  });

  it('answers {"active":false} for revoked, expired and garbage tokens', async () => {
    const account = await signUp(running);
    const pair = await logIn(running, account);
    await running
      .http()
      .post('/auth/revoke')
      .set('Authorization', `Bearer ${pair.access_token}`)
      .expect(204);
    expect((await introspect(pair.access_token).expect(200)).body).toEqual({ active: false });
    expect((await introspect(pair.refresh_token).expect(200)).body).toEqual({ active: false });
    expect((await introspect('not-a-token').expect(200)).body).toEqual({ active: false });

    const other = await logIn(running, account);
    expect((await introspect(other.access_token).expect(200)).body.active).toBe(true);
    // ACCESS_TOKEN_TTL=10 plus the 5 s clock tolerance.
    await new Promise((resolve) => setTimeout(resolve, 16_000));
    expect((await introspect(other.access_token).expect(200)).body).toEqual({ active: false });
  }, 40_000);

  it('requires the client credentials', async () => {
    const account = await signUp(running);
    const pair = await logIn(running, account);
    const wrong = await introspect(pair.access_token, [CLIENT.id, 'x'.repeat(40)]).expect(401);
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic/);
    expect(wrong.body.active).toBeUndefined();
    await running.http().post('/auth/introspect').send({ token: pair.access_token }).expect(401);
    await introspect(pair.access_token, ['someone', CLIENT.secret]).expect(401);
  });

  it('is off (404) unless clients are configured', async () => {
    const other = await createSuiteEnvironment('sqlite');
    const plain = await startSampleApp(other.env);
    try {
      const off = await plain
        .http()
        .post('/auth/introspect')
        .auth(CLIENT.id, CLIENT.secret)
        .send({ token: 'x' })
        .expect(404);
      expect(off.body).toEqual({
        statusCode: 404,
        message: 'Introspection is not configured on this server',
        error: 'Not Found',
      });
    } finally {
      await plain.close();
      await other.cleanup();
    }
  });
});
