/**
 * Strict input handling: malformed, oversized and hostile bodies and headers are refused with
 * a 4xx that carries no library or driver text and no stack trace; password rules (length,
 * no truncation), username rules (normalised uniqueness); security headers and no CORS echo.
 * Runs on every available database: sign-up conflicts and error mapping go through the driver.
 */
import type { Response } from 'supertest';
import { performance } from 'node:perf_hooks';
import { setups } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

/** Text that must never reach a client: library and driver messages, stack frames, paths. */
const LEAKS = [
  /JSON/,
  /Unexpected token/i,
  /QueryFailedError/i,
  /SQLITE/i,
  /jsonwebtoken/i,
  /better-sqlite3|typeorm|class-transformer|body-parser|raw-body|express/i,
  /\bat \S+ \(/, // stack frame
  /\.[cm]?[jt]s:\d+/, // file:line
  /node_modules|\/work\/|\/tmp\//,
  /\b(Type|Syntax|Range|Reference)Error\b/,
  /\bstack\b/i,
  /ER_[A-Z_]+|violates|duplicate key|UNIQUE constraint|relation "/i,
  /PayloadTooLargeError|entity\.parse\.failed|entity\.too\.large/i,
];

/** Every answer that is not a success: 4xx (never 5xx), JSON, and nothing from a library. */
function expectCleanError(res: Response, allowed: number[]) {
  expect({ status: res.status, allowed: allowed.includes(res.status) }).toEqual({
    status: res.status,
    allowed: true,
  });
  expect(res.status).toBeLessThan(500);
  expect(res.body?.access_token).toBeUndefined();
  expect(res.body?.secretKey).toBeUndefined();
  for (const leak of LEAKS) expect(res.text).not.toMatch(leak);
}

const STRONG = 'correct horse battery staple';

describe.each(setups())('strict input on %s with %s', (kind, adapter) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;
  let account: Awaited<ReturnType<typeof signUp>>;

  const token = (body: unknown) =>
    running
      .http()
      .post('/auth/token')
      .send(body as object);
  const raw = (path: string, contentType: string, body: string | Buffer) =>
    running.http().post(path).set('Content-Type', contentType).send(body);
  const creds = () => ({
    username: account.username,
    password: account.password,
    secretKey: account.secretKey,
  });

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: '3',
      HTTP_ADAPTER: adapter,
    });
    running = await startSampleApp(suite.env);
    account = await signUp(running);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  describe('POST /auth/token', () => {
    it('refuses non-string fields with 400', async () => {
      const { username, password, secretKey } = creds();
      const bodies = [
        { username: 5, password, secretKey },
        { username: true, password, secretKey },
        { username: null, password, secretKey },
        { username: { $ne: '' }, password, secretKey },
        { username: [username], password, secretKey },
        { username, password: 12345678, secretKey },
        { username, password: { $gt: '' }, secretKey },
        { username, password: [password], secretKey },
        { username, password: true, secretKey },
        { username, password, secretKey: 1 },
        { username, password, secretKey: [secretKey] },
        { username, password, secretKey: { toString: secretKey } },
        { username, password, secretKey: false },
      ];
      for (const body of bodies) expectCleanError(await token(body), [400]);
      // None of them counted as a failed login (three would have locked the account).
      await token(creds()).expect(200);
    });

    it('treats a null password or secret key as a missing factor: refused, never accepted', async () => {
      const other = await signUp(running);
      const { username, password, secretKey } = other;
      expectCleanError(await token({ username, password: null, secretKey }), [400, 401]);
      expectCleanError(await token({ username, password, secretKey: null }), [400, 401]);
    });

    it('refuses unknown fields with 400', async () => {
      for (const extra of [{ admin: true }, { role: 'admin' }, { id: account.id }, { '': 1 }]) {
        expectCleanError(await token({ ...creds(), ...extra }), [400]);
      }
    });

    it('refuses over-long fields with 400, before any hashing', async () => {
      const { username, password, secretKey } = creds();
      const bodies = [
        { username: 'u'.repeat(257), password, secretKey },
        { username, password: 'p'.repeat(1025), secretKey },
        { username, password: `${password}${'p'.repeat(5000)}`, secretKey },
        { username, password, secretKey: 'k'.repeat(257) },
      ];
      for (const body of bodies) expectCleanError(await token(body), [400]);
      await token(creds()).expect(200);
    });

    it('refuses a 1 MB password with 413, quickly, without counting it as a login', async () => {
      const huge = { ...creds(), password: 'p'.repeat(1024 * 1024) };
      for (let i = 0; i < 4; i++) {
        const started = performance.now();
        const res = await token(huge);
        expectCleanError(res, [413]);
        expect(performance.now() - started).toBeLessThan(2000);
      }
      // Four refusals, and no lock (it takes three failed logins): none reached the login.
      await token(creds()).expect(200);
    });

    it('refuses NUL and control characters with 400', async () => {
      const { username, password, secretKey } = creds();
      const bodies = [
        { username: `${username}\u0000`, password, secretKey },
        { username: `\u0000${username}`, password, secretKey },
        { username: `${username}\u001b[2J`, password, secretKey },
        { username, password: `${password}\u0000`, secretKey },
        { username, password: `${password.slice(0, 4)}\u0000${password.slice(4)}`, secretKey },
        { username, password, secretKey: `${secretKey}\u0000` },
        { username, password, secretKey: `${secretKey}\n` },
      ];
      for (const body of bodies) expectCleanError(await token(body), [400]);
      await token(creds()).expect(200);
    });

    it('refuses bodies over 16 kB with 413', async () => {
      const body = JSON.stringify({ ...creds(), padding: 'x'.repeat(17 * 1024) });
      expectCleanError(await raw('/auth/token', 'application/json', body), [413]);
      const refresh = JSON.stringify({ refresh_token: 'x'.repeat(17 * 1024) });
      expectCleanError(await raw('/auth/refresh', 'application/json', refresh), [413]);
      const signup = JSON.stringify({ username: 'big-body', password: 'p'.repeat(17 * 1024) });
      expectCleanError(await raw('/accounts', 'application/json', signup), [413]);
    });

    it('refuses other content types with a 4xx, even with correct credentials', async () => {
      const { username, password, secretKey } = creds();
      const form = new URLSearchParams({ username, password, secretKey }).toString();
      const json = JSON.stringify(creds());
      const attempts = [
        raw('/auth/token', 'text/plain', json),
        raw('/auth/token', 'application/x-www-form-urlencoded', form),
        raw('/auth/token', 'multipart/form-data; boundary=x', `--x\r\n${json}\r\n--x--`),
        raw('/auth/token', 'application/xml', `<creds><username>${username}</username></creds>`),
        raw('/auth/token', 'application/octet-stream', Buffer.from(json)),
        raw('/accounts', 'text/plain', JSON.stringify({ username: 'text-plain', password })),
        raw(
          '/accounts',
          'application/x-www-form-urlencoded',
          new URLSearchParams({ username: 'form-user', password }).toString(),
        ),
      ];
      for (const attempt of attempts) expectCleanError(await attempt, [400, 401, 415]);
      // Neither "account" was created.
      await signUp(running, 'text-plain');
      await signUp(running, 'form-user');
    });

    it('refuses malformed JSON, arrays, null and scalars with 400', async () => {
      const bodies = [
        '{"username":',
        '{"username":"a",}',
        "{'username':'a'}",
        '{"username":"a"}{"username":"b"}',
        '[]',
        JSON.stringify([creds()]),
        'null',
        '"username"',
        '42',
        'true',
        '{"username": 1e999}',
        '\u0000',
        Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`,
      ];
      for (const body of bodies) {
        expectCleanError(await raw('/auth/token', 'application/json', body), [400]);
        expectCleanError(await raw('/auth/refresh', 'application/json', body), [400]);
        expectCleanError(await raw('/accounts', 'application/json', body), [400]);
      }
    });

    it('refuses __proto__ and constructor keys, and nothing is polluted', async () => {
      const json = JSON.stringify(creds()).slice(0, -1);
      const polluting = [
        `${json},"__proto__":{"polluted":"yes"}}`,
        `${json},"constructor":{"prototype":{"polluted":"yes"}}}`,
        `{"__proto__":{"polluted":"yes"},"username":"a"}`,
      ];
      for (const body of polluting) {
        expectCleanError(await raw('/auth/token', 'application/json', body), [400]);
        expectCleanError(await raw('/auth/refresh', 'application/json', body), [400]);
      }
      const signups = [
        `{"username":"proto-user","password":"${STRONG}","__proto__":{"polluted":"yes"}}`,
        `{"username":"proto-user","password":"${STRONG}","constructor":{"prototype":{"polluted":"yes"}}}`,
        `{"username":"proto-user","password":"${STRONG}","hasOwnProperty":1}`,
        `{"username":"proto-user","password":"${STRONG}","toString":"x"}`,
      ];
      for (const body of signups) {
        expectCleanError(await raw('/accounts', 'application/json', body), [400]);
      }
      // The app runs in this process: a pollution would show here.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
      // And no account was created by the refused sign-ups.
      await signUp(running, 'proto-user');
    });

    it('refuses malformed Basic credentials with 400, and Basic plus a body', async () => {
      const { username, password, secretKey } = creds();
      const basic = (value: string) =>
        running
          .http()
          .post('/auth/token')
          .set('Authorization', value)
          .set('X-Secret-Key', secretKey);
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      for (const value of [
        'Basic',
        'Basic !!!',
        `Basic ${b64(username)}`,
        `Basic ${b64(`:${password}`)}`,
        `Basic ${b64(`${username}:${password}`)} junk`,
        `Basic ${b64(`${username}\u0000:${password}`)}`,
      ]) {
        expectCleanError(await basic(value), [400, 401]);
      }
      const both = await basic(`Basic ${b64(`${username}:${password}`)}`).send(creds());
      expectCleanError(both, [400]);
      await basic(`Basic ${b64(`${username}:${password}`)}`).expect(200);
    });
  });

  describe('POST /auth/revoke', () => {
    it('answers odd bodies with 204 (RFC 7009: nothing to revoke) or 400, never a 5xx', async () => {
      const bodies: unknown[] = [
        { token: null },
        { token_type_hint: null },
        { token: null, token_type_hint: 'access_token' },
        { token: 5 },
        { token: '' },
        { token: ['a.b.c'] },
        { token: { jti: 'x' } },
        { token: 'x'.repeat(9000) },
        { token: 'not.a.token', token_type_hint: 'refresh_token' },
        { token: 'a.b.c', extra: 1 },
        { token_type_hint: 'x'.repeat(100) },
      ];
      for (const body of bodies) {
        const { access_token } = await logIn(running, creds());
        const res = await running
          .http()
          .post('/auth/revoke')
          .set('Authorization', `Bearer ${access_token}`)
          .send(body as object);
        if (res.status !== 204) expectCleanError(res, [400]);
      }
    });
  });

  describe('POST /accounts', () => {
    it('refuses passwords under 8 characters, accepts 8, 64 and 128, refuses 129', async () => {
      for (const password of ['1234567', 'short', '', '\u{1F600}'.repeat(7)]) {
        const res = await running
          .http()
          .post('/accounts')
          .send({ username: `weak-${password.length}`, password });
        expectCleanError(res, [400]);
      }
      for (const length of [8, 64, 128]) {
        const password = `${'Pw-'.repeat(50)}`.slice(0, length);
        const created = await signUp(running, `len-${length}`, password);
        const pair = await logIn(running, created);
        expect(pair.access_token).toEqual(expect.any(String));
      }
      const tooLong = await running
        .http()
        .post('/accounts')
        .send({ username: 'len-129', password: 'x'.repeat(129) });
      expectCleanError(tooLong, [400]);
    });

    it('never truncates passwords: a difference after byte 72 matters (no bcrypt truncation)', async () => {
      const stem = 'a'.repeat(72);
      const created = await signUp(running, 'long-pass', `${stem}-the-real-ending`);
      for (const attempt of [stem, `${stem}-another-ending`, `${stem}-the-real-endinG`]) {
        const res = await token({ ...pick(created), password: attempt });
        expectCleanError(res, [401]);
        await token(pick(created)).expect(200); // and resets the lockout counter
      }
      // 72 bytes of two-byte characters, then the difference.
      const wide = '\u00e9'.repeat(36);
      const other = await signUp(running, 'wide-pass', `${wide}one`);
      expectCleanError(await token({ ...pick(other), password: `${wide}two` }), [401]);
      await token(pick(other)).expect(200);
    });

    it('accepts any email address as a username, up to 254 characters, and logs it in', async () => {
      const email = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(58)}.io`;
      expect(email).toHaveLength(254);
      for (const username of [
        email,
        '"quoted:local"@example.org',
        'first.last+tag@example.co.uk',
      ]) {
        const created = await signUp(running, username);
        const res = await token(pick(created)).expect(200);
        expect(res.body.token_type).toBe('Bearer');
      }
    });

    it('answers 409 for a taken username, whatever its case, spacing or Unicode form', async () => {
      await signUp(running, 'Taken.Name');
      for (const username of [
        'Taken.Name',
        'taken.name',
        'TAKEN.NAME',
        '  Taken.Name  ',
        '\tTaken.Name\n',
      ]) {
        const res = await running.http().post('/accounts').send({ username, password: STRONG });
        expectCleanError(res, [409]);
      }
      await signUp(running, 'Jos\u00e9');
      const nfd = await running
        .http()
        .post('/accounts')
        .send({ username: 'Jose\u0301', password: STRONG });
      expectCleanError(nfd, [409]);
    });

    it('refuses malformed usernames and fields with 400', async () => {
      const bodies: unknown[] = [
        { username: 'ab', password: STRONG },
        { username: 'x'.repeat(255), password: STRONG },
        { username: 'x'.repeat(5000), password: STRONG },
        { username: 'nul\u0000name', password: STRONG },
        { username: 'bell\u0007name', password: STRONG },
        { username: 'nul-pass', password: `${STRONG}\u0000` },
        { username: '   ', password: STRONG },
        { username: 5, password: STRONG },
        { username: ['array-name'], password: STRONG },
        { username: 'obj-pass', password: { length: 10 } },
        { username: 'num-pass', password: 123456789 },
        { username: 'extra-field', password: STRONG, admin: true },
        { username: 'no-pass' },
        { password: STRONG },
        {},
      ];
      for (const body of bodies) {
        const res = await running
          .http()
          .post('/accounts')
          .send(body as object);
        expectCleanError(res, [400]);
      }
    });
  });

  describe('headers', () => {
    it('sets helmet headers and no X-Powered-By, on successes and on errors', async () => {
      const responses = [
        await running.http().get('/health'),
        await token(creds()),
        await token({ username: 'nobody', password: 'x', secretKey: 'y' }),
        await token({ bogus: 1 }),
        await raw('/auth/token', 'application/json', '{'),
        await raw('/auth/token', 'application/json', 'x'.repeat(17 * 1024)),
        await running.http().get('/me'),
        await running.http().get('/no-such-route'),
      ];
      expect(responses.map((r) => r.status)).toEqual([200, 200, 401, 400, 400, 413, 401, 404]);
      for (const res of responses) {
        expect(res.headers['x-powered-by']).toBeUndefined();
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['strict-transport-security']).toEqual(expect.any(String));
        expect(res.headers['x-frame-options']).toEqual(expect.any(String));
      }
    });

    it('does not echo an arbitrary Origin in CORS answers (preflight or not)', async () => {
      const origin = 'https://evil.example';
      const preflight = await running
        .http()
        .options('/auth/token')
        .set('Origin', origin)
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization, content-type');
      expect(preflight.status).toBeLessThan(500);
      const simple = await token(creds()).set('Origin', origin);
      expect(simple.status).toBe(200);
      const me = await running.http().get('/me').set('Origin', origin);
      for (const res of [preflight, simple, me]) {
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      }
    });

    it('refuses oversized request headers with 431', async () => {
      const res = await running
        .http()
        .get('/me')
        .set('Authorization', `Bearer ${'a'.repeat(20 * 1024)}`);
      expect(res.status).toBe(431);
      const many = running.http().post('/auth/token');
      for (let i = 0; i < 40; i++) many.set(`X-Filler-${i}`, 'f'.repeat(500));
      expect((await many.send(creds())).status).toBe(431);
    });
  });
});

function pick({ username, password, secretKey }: Record<string, string>) {
  return { username, password, secretKey };
}
