import { createSuiteEnvironment, type SuiteEnvironment } from '../support/sample-app.harness.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

/**
 * The module behaves the same on Express and Fastify: the same routes, statuses, headers and
 * error bodies. Each adapter runs the built sample app in its own process, as `npm start` does.
 */
describe.each(['express', 'fastify'])('HTTP adapter %s', (adapter) => {
  let suite: SuiteEnvironment;
  let running: SpawnedApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', { HTTP_ADAPTER: adapter, THROTTLE_LIMIT: '40' });
    running = await spawnSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.stop();
    await suite?.cleanup();
  });

  async function signUp() {
    const username = `user-${Math.random().toString(36).slice(2, 10)}`;
    const password = 'correct horse battery staple';
    const res = await running.http().post('/accounts').send({ username, password }).expect(201);
    return { username, password, secretKey: res.body.secretKey as string };
  }

  it('runs the whole flow: sign-up, JSON and Basic login, /me, refresh, revoke', async () => {
    const account = await signUp();
    const pair = (await running.http().post('/auth/token').send(account).expect(200)).body;
    const basic = await running
      .http()
      .post('/auth/token')
      .auth(account.username, account.password)
      .set('X-Secret-Key', account.secretKey)
      .expect(200);
    expect(basic.headers['cache-control']).toBe('no-store');
    await running.http().get('/me').set('Authorization', `Bearer ${pair.access_token}`).expect(200);
    const next = await running
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: pair.refresh_token })
      .expect(200);
    await running
      .http()
      .post('/auth/revoke')
      .set('Authorization', `Bearer ${next.body.access_token}`)
      .expect(204);
    await running
      .http()
      .get('/me')
      .set('Authorization', `Bearer ${next.body.access_token}`)
      .expect(401);
    const jwks = await running.http().get('/.well-known/jwks.json').expect(200);
    expect(jwks.body.keys).toHaveLength(1);
  });

  it('gives the same error shapes and headers', async () => {
    const noToken = await running.http().get('/me').expect(401);
    expect(noToken.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(noToken.body).toEqual({
      statusCode: 401,
      message: 'Invalid or missing access token',
      error: 'Unauthorized',
    });

    const wrong = await running
      .http()
      .post('/auth/token')
      .send({ username: 'nobody', password: 'x', secretKey: 'y' })
      .expect(401);
    expect(wrong.body).toEqual({
      statusCode: 401,
      message: 'Invalid credentials',
      error: 'Unauthorized',
    });

    const unknownField = await running
      .http()
      .post('/auth/token')
      .send({ username: 'a', nope: 1 })
      .expect(400);
    expect(unknownField.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });

    const brokenJson = await running
      .http()
      .post('/auth/token')
      .set('Content-Type', 'application/json')
      .send('{"a":');
    expect(brokenJson.status).toBe(400);
    expect(brokenJson.body).toEqual({
      statusCode: 400,
      message: 'Malformed request body',
      error: 'Bad Request',
    });

    const tooLarge = await running
      .http()
      .post('/auth/token')
      .send({ username: 'a', password: 'x'.repeat(20_000) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toEqual({
      statusCode: 413,
      message: 'Request body too large',
      error: 'Payload Too Large',
    });

    const docs = await running.http().get('/docs-json').expect(200);
    expect(Object.keys(docs.body.paths)).toEqual(
      expect.arrayContaining(['/auth/token', '/me', '/accounts']),
    );

    const health = await running.http().get('/health').expect(200);
    expect(health.headers['x-content-type-options']).toBe('nosniff');
    expect(health.headers['x-powered-by']).toBeUndefined();
    expect(health.headers.etag).toBeUndefined();
  });
});
