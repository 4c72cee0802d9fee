/**
 * Per-username lockout (LOCKOUT_MAX_ATTEMPTS=3, LOCKOUT_SECONDS=2): what counts, what a lock
 * looks like (429 + Retry-After, identical for unknown usernames), normalisation, expiry,
 * reset on success, and persistence across a restart. Runs on every available database: the
 * counter lives in SQL.
 */
import { createHash } from 'node:crypto';
import type { Response } from 'supertest';
import { databases } from '../support/servers.js';
import {
  createSuiteEnvironment,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const LOCKOUT_SECONDS = 2;
const INVALID = { statusCode: 401, message: 'Invalid credentials', error: 'Unauthorized' };

type Credentials = { username: string; password?: string; secretKey?: string };

/** POST /auth/token with the credential fields of `creds` only (never the account's id). */
function login(running: RunningApp, { username, password, secretKey }: Credentials) {
  return running.http().post('/auth/token').send({ username, password, secretKey });
}

/** Status, body and Retry-After of a login answer, for comparing answers as a whole. */
function outcome(res: Response) {
  return { status: res.status, body: res.body, retryAfter: res.headers['retry-after'] };
}

function expectLocked(res: Response) {
  expect(res.status).toBe(429);
  expect(res.body.access_token).toBeUndefined();
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(LOCKOUT_SECONDS);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(databases())('lockout on %s', (kind) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: '3',
      LOCKOUT_SECONDS: String(LOCKOUT_SECONDS),
    });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('counts a wrong password, a wrong secret key and a missing factor; then locks', async () => {
    const account = await signUp(running);
    const other = await signUp(running);
    const { username, password, secretKey } = account;
    const failures: Credentials[] = [
      { username, password: 'wrong password!', secretKey },
      { username, password, secretKey: other.secretKey },
      { username, password },
    ];
    for (const attempt of failures) {
      const res = await login(running, attempt);
      expect(outcome(res)).toEqual({ status: 401, body: INVALID, retryAfter: undefined });
    }
    // Correct credentials, after three failures: locked out.
    expectLocked(await login(running, { username, password, secretKey }));
    // Basic credentials are the same account, so they are locked too.
    const basic = await running
      .http()
      .post('/auth/token')
      .auth(username, password)
      .set('X-Secret-Key', secretKey);
    expectLocked(basic);
    // Another account is not affected.
    await login(running, other).expect(200);
  });

  it('counts a missing password and a missing secret key too', async () => {
    const account = await signUp(running);
    const { username, password, secretKey } = account;
    await login(running, { username, secretKey }).expect(401);
    await login(running, { username }).expect(401);
    await login(running, { username, password: '', secretKey }).expect(401);
    expectLocked(await login(running, { username, password, secretKey }));
  });

  it('locks an unknown username exactly like a real one: same statuses, bodies and Retry-After', async () => {
    const account = await signUp(running);
    const known: ReturnType<typeof outcome>[] = [];
    const unknown: ReturnType<typeof outcome>[] = [];
    const ghost = `ghost-${Math.random().toString(36).slice(2, 10)}`;
    for (let i = 0; i < 5; i++) {
      known.push(outcome(await login(running, { ...account, password: 'wrong password!' })));
      unknown.push(outcome(await login(running, { ...account, username: ghost })));
    }
    expect(known.map((o) => o.status)).toEqual([401, 401, 401, 429, 429]);
    expect(unknown.map((o) => o.status)).toEqual([401, 401, 401, 429, 429]);
    // Retry-After counts down; it is present, and 1 or 2, in both.
    const shape = (o: ReturnType<typeof outcome>) => ({
      ...o,
      retryAfter: o.retryAfter === undefined ? undefined : /^[12]$/.test(String(o.retryAfter)),
    });
    expect(unknown.map(shape)).toEqual(known.map(shape));
    expect(known[3].retryAfter).toBeDefined();
    expect(unknown[3].retryAfter).toBeDefined();
    expect(known[3].body).toEqual(unknown[3].body);
    expect(JSON.stringify(known[3].body)).not.toMatch(/unknown|exist|not found/i);
  });

  it('counts every spelling of a username as one (trimmed, case-insensitive)', async () => {
    const account = await signUp(running, `Norm-${Math.random().toString(36).slice(2, 8)}`);
    const lower = account.username.toLowerCase();
    for (const spelling of [` ${account.username.toUpperCase()} `, account.username, lower]) {
      await login(running, { ...account, username: spelling, password: 'nope nope' }).expect(401);
    }
    expectLocked(await login(running, { ...account, username: lower }));
    expectLocked(await login(running, { ...account, username: `  ${lower.toUpperCase()}` }));
  });

  it('counts an unknown username whatever its spelling, too', async () => {
    const ghost = `Ghost-${Math.random().toString(36).slice(2, 8)}`;
    for (const spelling of [` ${ghost.toUpperCase()} `, ghost, ghost.toLowerCase()]) {
      await login(running, { username: spelling, password: 'x', secretKey: 'y' }).expect(401);
    }
    expectLocked(await login(running, { username: ghost, password: 'x', secretKey: 'y' }));
  });

  it('lifts the lock after LOCKOUT_SECONDS', async () => {
    const account = await signUp(running);
    for (let i = 0; i < 3; i++) {
      await login(running, { ...account, password: 'wrong password!' }).expect(401);
    }
    const locked = await login(running, account);
    expectLocked(locked);
    await sleep(LOCKOUT_SECONDS * 1000 + 200);
    const res = await login(running, account).expect(200);
    expect(res.body.access_token).toEqual(expect.any(String));
  });

  it('does not extend a lock by attempts made while it holds', async () => {
    const account = await signUp(running);
    for (let i = 0; i < 3; i++) {
      await login(running, { ...account, password: 'wrong password!' }).expect(401);
    }
    const lockedBy = Date.now();
    // Failures well into the lock: were they counted (or did they re-lock), the account would
    // still be locked 2 s after the first lock.
    await sleep(1200);
    for (let i = 0; i < 3; i++) {
      expectLocked(await login(running, { ...account, password: 'wrong password!' }));
    }
    await sleep(Math.max(0, lockedBy + LOCKOUT_SECONDS * 1000 + 150 - Date.now()));
    await login(running, account).expect(200);
  });

  it('counts concurrent failures atomically', async () => {
    const account = await signUp(running);
    const wrong = { ...account, password: 'wrong password!' };
    const answers = await Promise.all(Array.from({ length: 6 }, () => login(running, wrong)));
    for (const res of answers) expect([401, 429]).toContain(res.status);
    // Six failures were counted (none lost to a race): the account is locked.
    expectLocked(await login(running, account));
  });

  it('keys its rows by a keyed hash of the name, never by a plain SHA-256 of it', async () => {
    // A name an attacker tried (often a mistyped password) must not be recoverable from the
    // table by hashing a dictionary.
    const username = `dictionary-word-${Date.now()}`;
    await login(running, {
      username,
      password: 'wrong password!',
      secretKey: 'A'.repeat(43),
    }).expect(401);
    const rows: Array<{ username_hash: string }> = await running.dataSource.query(
      'SELECT username_hash FROM tfa_login_attempts',
    );
    const plain = createHash('sha256').update(username).digest('hex');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.username_hash)).not.toContain(plain);
    for (const row of rows) expect(row.username_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('resets the counter on a successful login', async () => {
    const account = await signUp(running);
    const wrong = { ...account, password: 'wrong password!' };
    await login(running, wrong).expect(401);
    await login(running, wrong).expect(401);
    await login(running, account).expect(200);
    // Without the reset, the next failure would be the third and lock the account.
    await login(running, wrong).expect(401);
    await login(running, wrong).expect(401);
    await login(running, account).expect(200);
  });
});

describe.each(databases())('lockout across a restart on %s', (kind) => {
  let suite: SuiteEnvironment;
  let running: RunningApp | undefined;

  beforeAll(async () => {
    // A longer lock than above, so that it cannot lapse while the app restarts.
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: '3',
      LOCKOUT_SECONDS: '60',
    });
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('keeps a lock (and a partial count) when the app restarts on the same database', async () => {
    running = await startSampleApp(suite.env);
    const locked = await signUp(running);
    const counted = await signUp(running);
    for (let i = 0; i < 3; i++) {
      await login(running, { ...locked, password: 'wrong password!' }).expect(401);
    }
    await login(running, locked).expect(429);
    await login(running, { ...counted, password: 'wrong password!' }).expect(401);
    await login(running, { ...counted, password: 'wrong password!' }).expect(401);

    await running.close();
    running = undefined;
    running = await startSampleApp(suite.env);

    const res = await login(running, locked);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(30);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Two failures were remembered: the third locks.
    await login(running, { ...counted, password: 'wrong password!' }).expect(401);
    await login(running, counted).expect(429);
  });
});
