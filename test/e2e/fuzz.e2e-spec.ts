/**
 * Property-based fuzzing (fast-check) of every route a client can reach without credentials:
 * random Authorization headers, random and mutated tokens, random JSON and non-JSON bodies,
 * random headers. Whatever arrives, the answer is never a 5xx, never carries library text,
 * and never holds an access token; where the outcome is certain (a random token on a guarded
 * route), it is exactly that outcome.
 *
 * Runs on SQLite only: what is fuzzed is parsing and validation, before any database work.
 * 150 runs per property keep the suite fast; fast-check prints the seed of a failure.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'supertest';
import type { TwoFactorJwk } from '../../lib/index.js';
import { assemble, TokenForge } from '../support/jwt-forge.js';
import { generateJwk, writeJwks } from '../support/keys.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const RUNS = 150;
const CHALLENGE = 'Bearer error="invalid_token"';
const LEAKS =
  /Unexpected token|QueryFailedError|SQLITE|jsonwebtoken|\bat \S+ \(|\.[cm]?[jt]s:\d+|node_modules|\b(Type|Syntax|Range)Error\b/;

/** Characters Node lets a client put in a header value. */
const headerChar = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  },
  { weight: 1, arbitrary: fc.constant('\t') },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
);
const headerValue = (maxLength = 300) => fc.string({ unit: headerChar, maxLength });
const base64urlSegment = fc
  .uint8Array({ maxLength: 300 })
  .map((bytes) => Buffer.from(bytes).toString('base64url'));

/** Tokens that look more or less like JWTs: random headers, payloads and signatures. */
function tokenArbitrary(kid: string) {
  const header = fc.record(
    {
      alg: fc.oneof(
        fc.constantFrom('none', 'None', 'HS256', 'ES256', 'RS256', 'PS256', 'EdDSA', ''),
        fc.string(),
        fc.jsonValue(),
      ),
      typ: fc.oneof(fc.constantFrom('at+jwt', 'rt+jwt', 'JWT'), fc.jsonValue()),
      kid: fc.oneof(fc.constant(kid), fc.string(), fc.jsonValue()),
      jku: fc.constant('http://127.0.0.1:9/jwks.json'),
      jwk: fc.object(),
      crit: fc.array(fc.string()),
    },
    { requiredKeys: [] },
  );
  const payload = fc.oneof(
    fc.record(
      {
        iss: fc.oneof(fc.constant('https://issuer.test'), fc.jsonValue()),
        sub: fc.oneof(fc.uuid(), fc.jsonValue()),
        iat: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        nbf: fc.oneof(fc.integer(), fc.jsonValue()),
        exp: fc.oneof(fc.integer(), fc.jsonValue()),
        jti: fc.oneof(fc.uuid(), fc.jsonValue()),
        aud: fc.jsonValue(),
      },
      { requiredKeys: [] },
    ),
    fc.jsonValue(),
  );
  const signature = fc.oneof(
    fc.constant(''),
    base64urlSegment,
    fc
      .uint8Array({ minLength: 64, maxLength: 64 })
      .map((b) => Buffer.from(b).toString('base64url')),
  );
  const structured = fc.tuple(header, payload, signature).map(([h, p, s]) => assemble(h, p, s));
  const segments = fc
    .array(fc.oneof(base64urlSegment, fc.string({ unit: headerChar, maxLength: 40 })), {
      minLength: 1,
      maxLength: 6,
    })
    .map((parts) => parts.join('.'));
  return fc.oneof(structured, segments, headerValue(500));
}

/**
 * Whether the sample app's JSON parser takes `text`: an object or array, with no member named
 * like an `Object.prototype` property (`__proto__`, `constructor`, `toString`, …).
 */
function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text, (key, v: unknown) => {
      if (Object.hasOwn(Object.prototype, key)) throw new Error('reserved');
      return v;
    });
    return typeof value === 'object' && value !== null;
  } catch {
    return false;
  }
}

/** Never a 5xx, never library text, never an access token. */
function expectSafe(res: Response) {
  expect(res.status).toBeLessThan(500);
  expect(res.status).toBeGreaterThanOrEqual(200);
  expect(res.text ?? '').not.toMatch(LEAKS);
  expect(res.text ?? '').not.toContain('access_token');
}

/** Request headers the fuzzer may not set (they frame the request itself). */
const FRAMING = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'expect',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'proxy-connection',
]);

const headerName = fc
  .stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}$/)
  .filter((name) => !FRAMING.has(name.toLowerCase()));

/** JSON bodies: random values, and objects with the expected keys holding random values. */
function jsonBody(keys: string[]) {
  const field = fc.oneof(
    fc.string({ maxLength: 100 }),
    fc.string({ unit: 'binary', maxLength: 50 }),
    fc.jsonValue({ maxDepth: 3 }),
  );
  const shaped = fc.record(
    Object.fromEntries(keys.map((k) => [k, field])) as Record<string, typeof field>,
    { requiredKeys: [] },
  );
  const withExtra = fc
    .tuple(shaped, fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })))
    .map(([a, b]) => ({ ...b, ...a }));
  return fc.oneof(shaped, withExtra, fc.jsonValue({ maxDepth: 4 })).map((v) => JSON.stringify(v));
}

/** Bodies that are not JSON, under random or misleading content types. */
const rawBody = fc.tuple(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'application/json; charset=utf-16',
      'application/vnd.api+json',
      'application/xml',
    ),
    headerValue(60).filter((v) => v.trim().length > 0),
  ),
  fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.json(), headerValue(400)),
);

describe('fuzzing the public routes (SQLite)', () => {
  let keysDir: string;
  let jwk: TwoFactorJwk;
  let suite: SuiteEnvironment;
  let running: RunningApp;
  let forge: TokenForge;
  let account: Awaited<ReturnType<typeof signUp>>;
  let accessToken: string;

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'tfa-fuzz-keys-'));
    jwk = generateJwk('ES256', 'fuzz-es256');
    suite = await createSuiteEnvironment('sqlite', { JWT_KEYS_FILE: writeJwks(keysDir, [jwk]) });
    running = await startSampleApp(suite.env);
    forge = new TokenForge({ running, jwk, issuer: 'https://issuer.test' });
    account = await signUp(running);
    accessToken = (await logIn(running, account)).access_token;
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('GET /me: any Authorization header but a valid token gets exactly 401 + challenge', async () => {
    const authorization = fc.oneof(
      headerValue(),
      tokenArbitrary(jwk.kid).map((t) => `Bearer ${t}`),
      fc
        .tuple(
          fc.mixedCase(fc.constantFrom('bearer', 'basic', 'token', 'jwt')),
          tokenArbitrary(jwk.kid),
        )
        .map(([scheme, t]) => `${scheme} ${t}`),
    );
    await fc.assert(
      fc.asyncProperty(authorization, async (value) => {
        const res = await running.http().get('/me').set('Authorization', value);
        expectSafe(res);
        expect({ status: res.status, challenge: res.headers['www-authenticate'] }).toEqual({
          status: 401,
          challenge: CHALLENGE,
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('GET /me: any change to a valid token (one character replaced, added or removed) is refused', async () => {
    const edit = fc.tuple(
      fc.nat({ max: accessToken.length - 1 }),
      fc.constantFrom('replace', 'insert', 'delete'),
      fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    );
    await fc.assert(
      fc.asyncProperty(edit, async ([at, how, char]) => {
        const mutated =
          how === 'replace'
            ? accessToken.slice(0, at) + char + accessToken.slice(at + 1)
            : how === 'insert'
              ? accessToken.slice(0, at) + char + accessToken.slice(at)
              : accessToken.slice(0, at) + accessToken.slice(at + 1);
        fc.pre(mutated !== accessToken);
        const res = await running.http().get('/me').set('Authorization', `Bearer ${mutated}`);
        expectSafe(res);
        expect(res.status).toBe(401);
      }),
      { numRuns: RUNS },
    );
    // Control: the untouched token is good.
    await running.http().get('/me').set('Authorization', `Bearer ${accessToken}`).expect(200);
  });

  it('GET /me: random claims signed with the real key never pass', async () => {
    const claims = fc.record(
      {
        iss: fc.oneof(fc.constant('https://issuer.test'), fc.jsonValue()),
        sub: fc.oneof(fc.constant(account.id), fc.uuid(), fc.jsonValue()),
        iat: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        nbf: fc.oneof(fc.integer(), fc.jsonValue()),
        exp: fc.oneof(fc.integer(), fc.jsonValue()),
        jti: fc.oneof(fc.uuid(), fc.jsonValue()),
        aud: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(claims, async (payload) => {
        const token = await forge.sign(payload);
        const res = await running.http().get('/me').set('Authorization', `Bearer ${token}`);
        expectSafe(res);
        expect(res.status).toBe(401);
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /auth/token: random JSON bodies, Basic headers and headers never yield a token or a 5xx', async () => {
    const request = fc.record({
      body: jsonBody(['username', 'password', 'secretKey']),
      authorization: fc.option(
        fc.oneof(
          headerValue(),
          fc
            .tuple(fc.string({ unit: headerChar, maxLength: 40 }), fc.string({ maxLength: 40 }))
            .map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
        ),
      ),
      secretKey: fc.option(headerValue(80)),
      headers: fc.dictionary(headerName, headerValue(80), { maxKeys: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ body, authorization, secretKey, headers }) => {
        const req = running.http().post('/auth/token');
        for (const [name, value] of Object.entries(headers)) req.set(name, value);
        if (authorization !== null) req.set('Authorization', authorization);
        if (secretKey !== null) req.set('X-Secret-Key', secretKey);
        const res = await req.set('Content-Type', 'application/json').send(body);
        expectSafe(res);
        expect([400, 401, 413, 415, 429]).toContain(res.status);
      }),
      { numRuns: RUNS },
    );
  }, 90000);

  it('POST /auth/refresh: random bodies and tokens never yield a token or a 5xx', async () => {
    const body = fc.oneof(
      jsonBody(['refresh_token']),
      tokenArbitrary(jwk.kid).map((t) => JSON.stringify({ refresh_token: t })),
    );
    await fc.assert(
      fc.asyncProperty(body, async (json) => {
        const res = await running
          .http()
          .post('/auth/refresh')
          .set('Content-Type', 'application/json')
          .send(json);
        expectSafe(res);
        expect([400, 401, 413]).toContain(res.status);
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /auth/revoke: random bodies with a valid token answer 204 or 400; random tokens 401 (400 for a body that is not a JSON object or array)', async () => {
    const request = fc.record({
      body: jsonBody(['token', 'token_type_hint']),
      bearer: fc.option(tokenArbitrary(jwk.kid), { freq: 2 }),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ body, bearer }) => {
        // A fresh, valid access token for each run (recorded, signed with the real key).
        const token = bearer ?? (await forge.sign(await forge.claims(account.id)));
        const res = await running
          .http()
          .post('/auth/revoke')
          .set('Authorization', `Bearer ${token}`)
          .set('Content-Type', 'application/json')
          .send(body);
        expectSafe(res);
        // A body the JSON parser refuses is answered 400 before any guard runs.
        expect(bearer === null ? [204, 400] : [400, 401]).toContain(res.status);
        if (bearer !== null && isJsonObject(body)) expect(res.status).toBe(401);
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /accounts: random bodies create an account or are refused, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(jsonBody(['username', 'password']), async (json) => {
        const res = await running
          .http()
          .post('/accounts')
          .set('Content-Type', 'application/json')
          .send(json);
        expectSafe(res);
        expect([201, 400, 409, 413]).toContain(res.status);
      }),
      { numRuns: RUNS },
    );
  }, 90000);

  it('every route: bodies that are not JSON, under any content type, get a 4xx', async () => {
    const routes = fc.constantFrom(
      '/auth/token',
      '/auth/refresh',
      '/auth/revoke',
      '/accounts',
      '/me',
    );
    await fc.assert(
      fc.asyncProperty(routes, rawBody, async (path, [contentType, body]) => {
        const req = path === '/me' ? running.http().get(path) : running.http().post(path);
        const res = await req.set('Content-Type', contentType).send(body);
        expectSafe(res);
        expect(res.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: RUNS },
    );
  });

  it('still serves the account after the fuzzing', async () => {
    const pair = await logIn(running, account);
    await running.http().get('/me').set('Authorization', `Bearer ${pair.access_token}`).expect(200);
  });
});
