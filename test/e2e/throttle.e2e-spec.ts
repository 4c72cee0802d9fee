/**
 * Per-client throttling of the token routes (THROTTLE_LIMIT=5, THROTTLE_TTL=60): the sixth
 * request of a client within the window is refused with 429 + Retry-After, whatever it holds;
 * guarded routes are not throttled; behind a trusted proxy each X-Forwarded-For client has its
 * own budget, and without one the header changes nothing.
 *
 * The counters live in memory (or Redis), not in the database, so this runs on SQLite only.
 * Every test starts its own app: the in-memory budget starts full.
 */
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { isAvailable } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const LIMIT = 5;
const TTL = 60;

function expectThrottled(res: Response) {
  expect(res.status).toBe(429);
  expect(res.body.access_token).toBeUndefined();
  expect(res.body.message).toEqual(expect.any(String));
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(TTL);
}

/** A random client address, for tests that go through a trusted proxy. */
function randomAddress(): string {
  const [a, b, c] = randomBytes(3);
  return `10.${a}.${b}.${c}`;
}

describe('throttling of the token routes (SQLite)', () => {
  let suite: SuiteEnvironment;
  const apps: RunningApp[] = [];
  /** An account made once (with a generous throttle), and a valid refresh token. */
  let account: Awaited<ReturnType<typeof signUp>>;

  async function start(extraEnv: Record<string, string> = {}): Promise<RunningApp> {
    const running = await startSampleApp({
      ...suite.env,
      THROTTLE_LIMIT: String(LIMIT),
      THROTTLE_TTL: String(TTL),
      ...extraEnv,
    });
    apps.push(running);
    return running;
  }

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite');
    const setup = await startSampleApp(suite.env);
    account = await signUp(setup);
    await setup.close();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => {
    await suite?.cleanup();
  });

  const credentials = () => ({
    username: account.username,
    password: account.password,
    secretKey: account.secretKey,
  });

  it('refuses the 6th /auth/token request of a client with 429 + Retry-After, even a correct one', async () => {
    const app = await start();
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const res = await app
        .http()
        .post('/auth/token')
        .send(i % 2 ? credentials() : { ...credentials(), secretKey: 'wrong' });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 200, 401, 200, 401]);
    expectThrottled(await app.http().post('/auth/token').send(credentials()));
    expectThrottled(
      await app
        .http()
        .post('/auth/token')
        .auth(account.username, account.password)
        .set('X-Secret-Key', account.secretKey),
    );
  });

  it('refuses the 6th /auth/refresh request, with one budget shared by the token routes', async () => {
    const app = await start();
    const { refresh_token } = await logIn(app, credentials());
    let current = refresh_token;
    for (let i = 0; i < LIMIT - 2; i++) {
      const res = await app.http().post('/auth/refresh').send({ refresh_token: current });
      expect(res.status).toBe(200);
      current = res.body.refresh_token;
    }
    await app.http().post('/auth/refresh').send({ refresh_token: 'not.a.token' }).expect(401);
    expectThrottled(await app.http().post('/auth/refresh').send({ refresh_token: current }));
    expectThrottled(await app.http().post('/auth/token').send(credentials()));
    // The refresh token was not spent by the throttled request.
    const later = await start({ THROTTLE_LIMIT: '100000' });
    await later.http().post('/auth/refresh').send({ refresh_token: current }).expect(200);
  });

  it('counts malformed requests too', async () => {
    const app = await start();
    for (let i = 0; i < LIMIT; i++) {
      await app.http().post('/auth/token').send({ nonsense: true }).expect(400);
    }
    expectThrottled(await app.http().post('/auth/token').send(credentials()));
  });

  it('does not throttle guarded routes (GET /me), even once the token budget is spent', async () => {
    const app = await start();
    const { access_token } = await logIn(app, credentials());
    for (let i = 0; i < LIMIT; i++) await app.http().post('/auth/token').send({ username: 'x' });
    expectThrottled(await app.http().post('/auth/token').send(credentials()));
    for (let i = 0; i < 3 * LIMIT; i++) {
      const res = await app.http().get('/me').set('Authorization', `Bearer ${access_token}`);
      expect(res.status).toBe(200);
    }
  });

  it('without TRUST_PROXY, ignores X-Forwarded-For: a forged header buys no new budget', async () => {
    const app = await start();
    for (let i = 0; i < LIMIT; i++) {
      await app
        .http()
        .post('/auth/token')
        .set('X-Forwarded-For', randomAddress())
        .send(credentials())
        .expect(200);
    }
    for (const forwarded of [randomAddress(), `${randomAddress()}, 127.0.0.1`, '::1']) {
      expectThrottled(
        await app.http().post('/auth/token').set('X-Forwarded-For', forwarded).send(credentials()),
      );
    }
    expectThrottled(await app.http().post('/auth/token').send(credentials()));
  });
});

/**
 * Behind a proxy, on both adapters: the client is the address the trusted proxy saw, i.e. the
 * `X-Forwarded-For` entry the proxy appended (the right-most one past the trusted hops). A client
 * that adds entries of its own to the left buys no new budget. The test client connects from
 * 127.0.0.1 and plays the proxy: its right-most entry is the "real" client.
 */
describe.each(['express', 'fastify'])(
  'throttling behind a trusted proxy (%s, SQLite)',
  (adapter) => {
    let suite: SuiteEnvironment;
    const apps: RunningApp[] = [];

    async function start(trustProxy: string): Promise<RunningApp> {
      const running = await startSampleApp({
        ...suite.env,
        HTTP_ADAPTER: adapter,
        THROTTLE_LIMIT: String(LIMIT),
        THROTTLE_TTL: String(TTL),
        TRUST_PROXY: trustProxy,
      });
      apps.push(running);
      return running;
    }

    /** A token request the proxy forwards with `forwarded`; a made-up login, answered 401. */
    const post = (app: RunningApp, forwarded: string) =>
      app
        .http()
        .post('/auth/token')
        .set('X-Forwarded-For', forwarded)
        // A new username each time, so that no lockout answers 429 in the throttle's place.
        .send({ username: `nobody-${randomAddress()}`, password: 'x', secretKey: 'y' });

    beforeAll(async () => {
      suite = await createSuiteEnvironment('sqlite');
    });
    afterEach(async () => {
      for (const app of apps.splice(0)) await app.close();
    });
    afterAll(async () => {
      await suite?.cleanup();
    });

    it.each(['1', '127.0.0.1', '127.0.0.0/8,::1'])(
      'with TRUST_PROXY=%s, gives each forwarded client its own budget',
      async (trustProxy) => {
        const app = await start(trustProxy);
        for (const client of [randomAddress(), randomAddress()]) {
          for (let i = 0; i < LIMIT; i++) expect((await post(app, client)).status).toBe(401);
          expectThrottled(await post(app, client));
        }
      },
    );

    it.each(['1', '127.0.0.1'])(
      'with TRUST_PROXY=%s, a forged left-most X-Forwarded-For entry buys no new budget',
      async (trustProxy) => {
        const app = await start(trustProxy);
        const client = randomAddress();
        const statuses: number[] = [];
        for (let i = 0; i < LIMIT * 4; i++) {
          statuses.push((await post(app, `${randomAddress()}, ${client}`)).status);
        }
        expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(401));
        expect(statuses.slice(LIMIT)).toEqual(Array(LIMIT * 3).fill(429));
        expectThrottled(await post(app, `${randomAddress()}, ${randomAddress()}, ${client}`));
      },
    );

    it('with proxies listed that the client is not, ignores X-Forwarded-For', async () => {
      const app = await start('10.0.0.0/8,fd00::/8');
      for (let i = 0; i < LIMIT; i++) expect((await post(app, randomAddress())).status).toBe(401);
      expectThrottled(await post(app, randomAddress()));
    });
  },
);

// With Redis the counters are shared by every instance. Only when Redis answers (the global
// set-up reports it otherwise, and fails the run with CI=true). Each test uses its own
// forwarded addresses, so counters other suites leave in Redis cannot interfere.
const withRedis = isAvailable('redis') ? (['redis'] as const) : [];
if (withRedis.length > 0) {
  describe.each(withRedis)('throttling shared through %s (SQLite)', () => {
    let suite: SuiteEnvironment;
    let first: RunningApp | undefined;
    let second: RunningApp | undefined;

    beforeAll(async () => {
      suite = await createSuiteEnvironment('sqlite');
    });
    afterAll(async () => {
      await first?.close();
      await second?.close();
      await suite?.cleanup();
    });

    it('spends one budget per client across two instances', async () => {
      const env = {
        ...suite.env,
        REDIS_URL: process.env.TEST_REDIS_URL!,
        THROTTLE_LIMIT: String(LIMIT),
        THROTTLE_TTL: String(TTL),
        TRUST_PROXY: '1',
      };
      first = await startSampleApp(env);
      second = await startSampleApp(env);
      const client = randomAddress();
      const post = (app: RunningApp) =>
        app
          .http()
          .post('/auth/token')
          .set('X-Forwarded-For', client)
          // A new username each time, so that no lockout answers 429 in the throttle's place.
          .send({ username: `nobody-${randomAddress()}`, password: 'x', secretKey: 'y' });
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT; i++) statuses.push((await post(i % 2 ? first : second)).status);
      expect(statuses).toEqual(Array(LIMIT).fill(401));
      expectThrottled(await post(first));
      expectThrottled(await post(second));
    });
  });
}
