import { randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import { revocationChannel } from '../../lib/core/revocation/revocation-view.service.js';
import { PrivateRedisServer } from '../support/redis-server.js';
import {
  createSuiteEnvironment,
  signUp,
  startSampleApp,
  SUITE_ISSUER,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { isAvailable } from '../support/servers.js';

/**
 * Scale-out: two instances of the sample app in one process, each on its own socket, sharing
 * one PostgreSQL database and (unless said otherwise) one Redis.
 *
 * In one process, Passport's strategy registry is shared: the guards of every app run the
 * strategies of the app started last (B), so only B's credential and token checks are its own.
 * The assertions are therefore about what B sees of changes made through A's services
 * (revocations, key rotation, throttling, which are A's own); the last test of the
 * "without Redis" block shows the sharing itself.
 */

const withPostgres = isAvailable('postgres') ? describe : describe.skip;
const withPostgresAndRedis =
  isAvailable('postgres') && isAvailable('redis') ? describe : describe.skip;

/** The documented bound with Redis (DESIGN.md, Performance). */
const PUB_SUB_BOUND_MS = 1000;
/** Without Redis: `revocation.syncInterval` (500 ms by default), with room for a slow poll. */
const POLL_BOUND_MS = 1500;

/** Every token-route request of this file comes from this client, so that no other suite
 * sharing the Redis server counts against it (the instances trust one proxy hop: TRUST_PROXY=1). */
const CLIENT_IP = randomClientIp();

function randomClientIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

/** The channel the suites' instances (issuer `SUITE_ISSUER`) publish and hear revocations on. */
const CHANNEL = revocationChannel(SUITE_ISSUER);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Credentials = { username: string; password: string; secretKey: string };
type Pair = { access_token: string; refresh_token: string };

function tokenRequest(app: RunningApp, creds: Credentials, ip = CLIENT_IP) {
  const { username, password, secretKey } = creds;
  return app
    .http()
    .post('/auth/token')
    .set('X-Forwarded-For', ip)
    .send({ username, password, secretKey });
}

async function logInAt(app: RunningApp, creds: Credentials): Promise<Pair> {
  const res = await tokenRequest(app, creds);
  expect(res.status).toBe(200);
  return res.body as Pair;
}

async function meStatus(app: RunningApp, token: string): Promise<number> {
  return (await app.http().get('/me').set('Authorization', `Bearer ${token}`)).status;
}

function claimsOf(token: string): { jti: string; exp: number; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/**
 * Polls `GET /me` with `token` every 50 ms until it is refused, and returns the milliseconds
 * from `since` to the first refusal (Infinity when still accepted after `bound` + 1 s). Every
 * answer before the refusal must be a 200: the token worked until the revocation reached it.
 */
async function msUntilRefused(
  app: RunningApp,
  token: string,
  since: number,
  bound: number,
): Promise<number> {
  for (;;) {
    const status = await meStatus(app, token);
    const elapsed = Date.now() - since;
    if (status === 401) return elapsed;
    expect(status).toBe(200);
    if (elapsed > bound + 1000) return Infinity;
    await sleep(50);
  }
}

/** Revokes (on `on`) the login the access token belongs to, timing from just before the call. */
async function revokeLogin(on: RunningApp, accessToken: string): Promise<number> {
  const startedAt = Date.now();
  await on
    .http()
    .post('/auth/revoke')
    .set('Authorization', `Bearer ${accessToken}`)
    .set('X-Forwarded-For', CLIENT_IP)
    .expect(204);
  return startedAt;
}

/** Polls until `check` holds, or fails naming `what` after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

/**
 * Sends a revocation of `token` straight on the Redis channel, without touching the database:
 * an instance that refuses the token afterwards can only have learnt it by pub/sub (its
 * database poll finds nothing). Returns the number of subscribers that received it.
 */
async function revokeByPubSubOnly(
  redisUrl: string,
  token: string,
  channel = CHANNEL,
): Promise<number> {
  const { jti, exp } = claimsOf(token);
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    return await client.publish(
      channel,
      JSON.stringify({ from: 'two-instances.e2e-spec', tokens: [[jti, exp]], accounts: [] }),
    );
  } finally {
    client.disconnect();
  }
}

/** Asserts that the database does not hold a revocation of `token` (see revokeByPubSubOnly). */
async function expectNotRevokedInDatabase(app: RunningApp, token: string) {
  const rows: { revoked_at: unknown }[] = await app.dataSource.query(
    'SELECT revoked_at FROM tfa_issued_tokens WHERE jti = $1',
    [claimsOf(token).jti],
  );
  expect(rows).toEqual([{ revoked_at: null }]);
}

/** Subscribes to the revocation channel and collects what the instances publish. */
async function listenToRevocations(redisUrl: string) {
  const client = new Redis(redisUrl);
  client.on('error', () => undefined);
  const messages: string[] = [];
  client.on('message', (_channel: string, message: string) => messages.push(message));
  await client.subscribe(CHANNEL);
  return {
    /** Resolves once a message naming `jti` arrived (fails after 1 s). */
    async expectJti(jti: string) {
      await eventually(
        `a message naming ${jti} on ${CHANNEL}`,
        async () => messages.some((m) => m.includes(jti)),
        PUB_SUB_BOUND_MS,
      );
    },
    close: () => client.disconnect(),
  };
}

/** `{ name: status }` of the indicators in a GET /health body's `details`. */
function statusOf(details: Record<string, { status: string }>): Record<string, string> {
  return Object.fromEntries(Object.entries(details).map(([name, d]) => [name, d.status]));
}

async function startPair(env: Record<string, string>): Promise<[RunningApp, RunningApp]> {
  const a = await startSampleApp(env);
  try {
    return [a, await startSampleApp(env)];
  } catch (error) {
    await a.close();
    throw error;
  }
}

withPostgresAndRedis('two instances sharing PostgreSQL and Redis', () => {
  const redisUrl = process.env.TEST_REDIS_URL!;
  let suite: SuiteEnvironment;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('postgres', {
      REDIS_URL: redisUrl,
      TRUST_PROXY: '1',
      LOCKOUT_MAX_ATTEMPTS: '4',
    });
    [a, b] = await startPair(suite.env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await suite?.cleanup();
  });

  it('logs in on B with an account made on A, and each token works on both', async () => {
    const account = await signUp(a);
    const fromB = await logInAt(b, account);
    const fromA = await logInAt(a, account);
    for (const app of [a, b]) {
      for (const token of [fromA.access_token, fromB.access_token]) {
        const me = await app.http().get('/me').set('Authorization', `Bearer ${token}`);
        expect(me.status).toBe(200);
        expect(me.body).toEqual({ id: account.id, username: account.username });
      }
    }
  });

  it('refuses on B, within 1 s, a login revoked on A', async () => {
    const account = await signUp(a);
    const { access_token } = await logInAt(a, account);
    expect(await meStatus(b, access_token)).toBe(200);
    const listener = await listenToRevocations(redisUrl);
    try {
      const startedAt = await revokeLogin(a, access_token);
      expect(
        await msUntilRefused(b, access_token, startedAt, PUB_SUB_BOUND_MS),
      ).toBeLessThanOrEqual(PUB_SUB_BOUND_MS);
      await listener.expectJti(claimsOf(access_token).jti);
    } finally {
      listener.close();
    }
    expect(await meStatus(a, access_token)).toBe(401);
  });

  it('refuses on B, within 1 s, one token revoked on A (RFC 7009) and keeps the other', async () => {
    const account = await signUp(a);
    const keep = await logInAt(b, account);
    const drop = await logInAt(b, account);
    expect(await meStatus(b, keep.access_token)).toBe(200);
    expect(await meStatus(b, drop.access_token)).toBe(200);
    const startedAt = Date.now();
    await a
      .http()
      .post('/auth/revoke')
      .set('Authorization', `Bearer ${keep.access_token}`)
      .set('X-Forwarded-For', CLIENT_IP)
      .send({ token: drop.access_token })
      .expect(204);
    expect(
      await msUntilRefused(b, drop.access_token, startedAt, PUB_SUB_BOUND_MS),
    ).toBeLessThanOrEqual(PUB_SUB_BOUND_MS);
    expect(await meStatus(b, keep.access_token)).toBe(200);
  });

  it('delivers a revocation to B by pub/sub alone', async () => {
    const account = await signUp(a);
    const { access_token } = await logInAt(a, account);
    expect(await meStatus(b, access_token)).toBe(200);
    const startedAt = Date.now();
    // At least A and B listen (other suites may share the server).
    expect(await revokeByPubSubOnly(redisUrl, access_token)).toBeGreaterThanOrEqual(2);
    expect(await msUntilRefused(b, access_token, startedAt, PUB_SUB_BOUND_MS)).toBeLessThanOrEqual(
      PUB_SUB_BOUND_MS,
    );
    await expectNotRevokedInDatabase(b, access_token);
  });

  it('adds failures on A and on B up to one lockout (LOCKOUT_MAX_ATTEMPTS=4)', async () => {
    const account = await signUp(a);
    const wrong = { ...account, password: 'not the password at all' };
    // The count lives in the shared database. (In this process both apps' credential guards run
    // B's strategy, see the top of the file, so this shows the sum across instances only once
    // each app authenticates with its own services.)
    for (const app of [a, a, b, b]) {
      const res = await tokenRequest(app, wrong);
      expect(res.status).toBe(401);
    }
    for (const app of [a, b]) {
      const res = await tokenRequest(app, account);
      expect(res.status).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
  });

  it('refuses on B, within 1 s, the tokens of an account whose secret key was rotated on A', async () => {
    const account = await signUp(a);
    const fromA = await logInAt(a, account);
    const fromB = await logInAt(b, account);
    expect(await meStatus(b, fromA.access_token)).toBe(200);
    expect(await meStatus(b, fromB.access_token)).toBe(200);
    const startedAt = Date.now();
    const rotated = await a
      .http()
      .post('/me/secret-key')
      .set('Authorization', `Bearer ${fromA.access_token}`)
      .send({ password: account.password, secretKey: account.secretKey })
      .expect(200);
    for (const token of [fromB.access_token, fromA.access_token]) {
      expect(await msUntilRefused(b, token, startedAt, PUB_SUB_BOUND_MS)).toBeLessThanOrEqual(
        PUB_SUB_BOUND_MS,
      );
    }
    expect((await tokenRequest(b, account)).status).toBe(401);
    const fresh = await logInAt(b, { ...account, secretKey: rotated.body.secretKey });
    expect(await meStatus(a, fresh.access_token)).toBe(200);
    expect(await meStatus(b, fresh.access_token)).toBe(200);
  });

  describe('throttling (THROTTLE_LIMIT=6)', () => {
    let ta: RunningApp;
    let tb: RunningApp;

    beforeAll(async () => {
      [ta, tb] = await startPair({ ...suite.env, THROTTLE_LIMIT: '6', THROTTLE_TTL: '60' });
    });
    afterAll(async () => {
      await ta?.close();
      await tb?.close();
    });

    it('counts the token requests of one client on A and on B against one limit', async () => {
      // Sign-up shares the token routes' budget: it comes from a client of its own.
      const username = `throttled-${randomClientIp()}`;
      const password = 'correct horse battery staple';
      const created = await ta
        .http()
        .post('/accounts')
        .set('X-Forwarded-For', randomClientIp())
        .send({ username, password })
        .expect(201);
      const account = { username, password, secretKey: created.body.secretKey as string };
      const client = randomClientIp();
      for (const app of [ta, ta, ta, tb, tb, tb]) {
        expect((await tokenRequest(app, account, client)).status).toBe(200);
      }
      for (const app of [ta, tb]) {
        const res = await tokenRequest(app, account, client);
        expect(res.status).toBe(429);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      // The limit is per client: another one is still served, on either instance.
      const other = randomClientIp();
      expect((await tokenRequest(ta, account, other)).status).toBe(200);
      expect((await tokenRequest(tb, account, other)).status).toBe(200);
    });
  });
});

withPostgres('two instances sharing PostgreSQL, without Redis', () => {
  let suite: SuiteEnvironment;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('postgres', { TRUST_PROXY: '1' });
    [a, b] = await startPair(suite.env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await suite?.cleanup();
  });

  it('logs in on B with an account made on A', async () => {
    const account = await signUp(a);
    const { access_token } = await logInAt(b, account);
    expect(await meStatus(a, access_token)).toBe(200);
  });

  it('refuses on B a login revoked on A within the poll bound (1.5 s)', async () => {
    const account = await signUp(a);
    const { access_token } = await logInAt(a, account);
    expect(await meStatus(b, access_token)).toBe(200);
    const startedAt = await revokeLogin(a, access_token);
    expect(await msUntilRefused(b, access_token, startedAt, POLL_BOUND_MS)).toBeLessThanOrEqual(
      POLL_BOUND_MS,
    );
  });

  it('reports only the database in GET /health', async () => {
    const res = await b.http().get('/health').expect(200);
    expect(statusOf(res.body.details)).toEqual({ database: 'up' });
  });

  // Last of its block: while it fails, the apps of this process authenticate through C's
  // closed strategies after it.
  it('keeps serving on A and B when a third instance of the same process stops', async () => {
    const account = await signUp(a);
    const c = await startSampleApp(suite.env);
    const fromC = await logInAt(c, account);
    expect(await meStatus(c, fromC.access_token)).toBe(200);
    await c.close();
    // Each instance must authenticate with its own services, not with those of C.
    const fromA = await tokenRequest(a, account);
    expect(fromA.status).toBe(200);
    expect(await meStatus(b, fromA.body.access_token)).toBe(200);
    expect(await meStatus(a, fromC.access_token)).toBe(200);
  });
});

withPostgresAndRedis('two instances when Redis goes away and comes back', () => {
  let redis: PrivateRedisServer;
  let suite: SuiteEnvironment;
  let a: RunningApp;
  let b: RunningApp;

  async function health(app: RunningApp) {
    const res = await app.http().get('/health');
    return { status: res.status, details: res.body.details as Record<string, { status: string }> };
  }

  async function subscribers(channel = CHANNEL): Promise<number> {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const [, count] = (await client.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      return Number(count);
    } finally {
      client.disconnect();
    }
  }

  beforeAll(async () => {
    redis = await PrivateRedisServer.start();
    suite = await createSuiteEnvironment('postgres', {
      REDIS_URL: redis.url,
      TRUST_PROXY: '1',
    });
    [a, b] = await startPair(suite.env);
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.kill();
    await suite?.cleanup();
  });

  it('subscribes both instances at start, so pub/sub alone revokes', async () => {
    expect(await subscribers()).toBe(2);
    const account = await signUp(a);
    const { access_token } = await logInAt(a, account);
    expect(await meStatus(b, access_token)).toBe(200);
    const startedAt = Date.now();
    expect(await revokeByPubSubOnly(redis.url, access_token)).toBe(2);
    expect(await msUntilRefused(b, access_token, startedAt, PUB_SUB_BOUND_MS)).toBeLessThanOrEqual(
      PUB_SUB_BOUND_MS,
    );
    await expectNotRevokedInDatabase(b, access_token);
  });

  it("does not hear the revocations of another issuer's application on the same Redis", async () => {
    const other = revocationChannel('https://another-app.test');
    expect(await subscribers(other)).toBe(0);
    const account = await signUp(a);
    const { access_token } = await logInAt(a, account);
    // Another application sharing the Redis server revokes a token with the same jti (or an
    // account with the same id): it publishes on its own channel, which neither instance hears.
    expect(await revokeByPubSubOnly(redis.url, access_token, other)).toBe(0);
    await sleep(POLL_BOUND_MS);
    expect(await meStatus(b, access_token)).toBe(200);
    expect(await meStatus(a, access_token)).toBe(200);
  });

  it('keeps logging in, guarding and revoking on the database alone while Redis is down', async () => {
    await redis.kill();
    for (const app of [a, b]) {
      await eventually(
        'GET /health reports Redis down',
        async () => (await health(app)).details?.redis?.status === 'down',
        5000,
      );
      const { status, details } = await health(app);
      expect(status).toBe(503);
      expect(statusOf(details)).toEqual({ database: 'up', redis: 'down' });
    }
    const account = await signUp(a);
    const fromB = await logInAt(b, account);
    const fromA = await logInAt(a, account);
    expect(await meStatus(a, fromB.access_token)).toBe(200);
    expect(await meStatus(b, fromA.access_token)).toBe(200);
    const startedAt = await revokeLogin(a, fromA.access_token);
    expect(
      await msUntilRefused(b, fromA.access_token, startedAt, POLL_BOUND_MS),
    ).toBeLessThanOrEqual(POLL_BOUND_MS);
    expect(await meStatus(b, fromB.access_token)).toBe(200);
  }, 30_000);

  it('reconnects both instances when Redis returns, and pub/sub revokes again', async () => {
    await redis.start();
    for (const app of [a, b]) {
      await eventually(
        'GET /health reports Redis up again',
        async () => (await health(app)).status === 200,
        10_000,
      );
      expect(statusOf((await health(app)).details)).toEqual({ database: 'up', redis: 'up' });
    }
    await eventually(
      'both instances re-subscribed',
      async () => (await subscribers()) === 2,
      10_000,
    );

    const account = await signUp(a);
    const viaPubSub = await logInAt(a, account);
    const viaRevoke = await logInAt(a, account);
    expect(await meStatus(b, viaPubSub.access_token)).toBe(200);
    expect(await meStatus(b, viaRevoke.access_token)).toBe(200);

    let startedAt = Date.now();
    expect(await revokeByPubSubOnly(redis.url, viaPubSub.access_token)).toBe(2);
    expect(
      await msUntilRefused(b, viaPubSub.access_token, startedAt, PUB_SUB_BOUND_MS),
    ).toBeLessThanOrEqual(PUB_SUB_BOUND_MS);
    await expectNotRevokedInDatabase(b, viaPubSub.access_token);

    // A publishes again too.
    const listener = await listenToRevocations(redis.url);
    try {
      startedAt = await revokeLogin(a, viaRevoke.access_token);
      expect(
        await msUntilRefused(b, viaRevoke.access_token, startedAt, PUB_SUB_BOUND_MS),
      ).toBeLessThanOrEqual(PUB_SUB_BOUND_MS);
      await listener.expectJti(claimsOf(viaRevoke.access_token).jti);
    } finally {
      listener.close();
    }
  }, 40_000);
});
