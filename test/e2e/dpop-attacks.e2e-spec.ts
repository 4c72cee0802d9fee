/**
 * Attacks on DPoP (RFC 9449) over real HTTP against the built sample app, from a red team of
 * the implementation. The tests named "refuses …" without "held" failed before their fix (a
 * path smuggled through `Host` or `X-Forwarded-Host`, a huge RSA exponent); "held" tests are
 * attacks that failed from the start, kept as regression tests.
 */
import {
  createHash,
  generatePrimeSync,
  createPrivateKey,
  randomUUID,
  sign,
  KeyObject,
} from 'node:crypto';
import * as DPoP from 'dpop';
import { exportJWK } from 'jose';
import type { Response } from 'supertest';
import {
  athOf,
  craftProof,
  newDpopKey,
  nowSeconds,
  type DpopKeyPair,
} from '../support/dpop-client.js';
import { burst, tally } from '../support/race.js';
import { createSuiteEnvironment, type SuiteEnvironment } from '../support/sample-app.harness.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

type Account = { username: string; password: string; secretKey: string };

async function signUp(app: SpawnedApp): Promise<Account> {
  const username = `rt-${Math.random().toString(36).slice(2, 10)}`;
  const password = 'correct horse battery staple';
  const res = await app.http().post('/accounts').send({ username, password }).expect(201);
  return { username, password, secretKey: res.body.secretKey };
}

async function boundLogin(app: SpawnedApp, key: DpopKeyPair, account?: Account) {
  const acc = account ?? (await signUp(app));
  const res = await app
    .http()
    .post('/auth/token')
    .set('DPoP', await DPoP.generateProof(key, `${app.url}/auth/token`, 'POST'))
    .send(acc);
  expect([res.status, res.body.token_type]).toEqual([200, 'DPoP']);
  return {
    account: acc,
    at: res.body.access_token as string,
    rt: res.body.refresh_token as string,
  };
}

function me(app: SpawnedApp, token: string, proof?: string, scheme = 'DPoP') {
  const req = app.http().get('/me').set('Authorization', `${scheme} ${token}`);
  return proof === undefined ? req : req.set('DPoP', proof);
}

function challenge(res: Response): string {
  const value = String(res.headers['www-authenticate'] ?? '');
  return `${res.status} ${value.split(' ')[0]} ${/error="([^"]*)"/.exec(value)?.[1] ?? ''}`.trim();
}

// ---- an RSA key with a public exponent as large as its modulus (valid, but slow to verify) ----
const b64 = (n: bigint) => {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex').toString('base64url');
};
function inverse(a: bigint, m: bigint): bigint | null {
  let [r0, r1, x0, x1] = [((a % m) + m) % m, m, 1n, 0n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [x0, x1] = [x1, x0 - q * x1];
  }
  return r0 === 1n ? ((x0 % m) + m) % m : null;
}
function bigExponentRsaKey(bits = 3072): { privateKey: KeyObject; jwk: Record<string, string> } {
  for (;;) {
    const p = generatePrimeSync(bits / 2, { bigint: true });
    const q = generatePrimeSync(bits / 2, { bigint: true });
    const n = p * q;
    if (n.toString(2).length !== bits) continue;
    const phi = (p - 1n) * (q - 1n);
    let e = (n >> 2n) | 1n;
    let d: bigint | null;
    while (!(d = inverse(e, phi))) e += 2n;
    const qi = inverse(q, p)!;
    const privateJwk = {
      kty: 'RSA',
      n: b64(n),
      e: b64(e),
      d: b64(d),
      p: b64(p),
      q: b64(q),
      dp: b64(d % (p - 1n)),
      dq: b64(d % (q - 1n)),
      qi: b64(qi),
    };
    return {
      privateKey: createPrivateKey({ key: privateJwk, format: 'jwk' }),
      jwk: { kty: 'RSA', n: privateJwk.n, e: privateJwk.e },
    };
  }
}
function rawProof(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  signWith: (input: Buffer) => Buffer,
): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const c = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${h}.${c}.${signWith(Buffer.from(`${h}.${c}`)).toString('base64url')}`;
}

describe.each(['express', 'fastify'])('DPoP attacks (SQLite, %s, no TRUST_PROXY)', (adapter) => {
  let suite: SuiteEnvironment;
  let app: SpawnedApp;
  let port: string;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      HTTP_ADAPTER: adapter,
      LOCKOUT_MAX_ATTEMPTS: '3',
      LOCKOUT_SECONDS: '120',
    });
    app = await spawnSampleApp(suite.env);
    port = new URL(app.url).port;
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    await suite?.cleanup();
  });

  // ------------------------------------------------------------------ weaknesses (must FAIL)

  it('refuses a proof made for another path, even with a Host header that carries that path', async () => {
    const key = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const elsewhere = `http://127.0.0.1:${port}/some/other/route`;
    const outcomes: Record<string, number> = {};
    for (const host of [
      `127.0.0.1:${port}/some/other/route#`,
      `127.0.0.1:${port}/some/other/route?`,
      `127.0.0.1:${port}\\some\\other\\route#`,
    ]) {
      const proof = await DPoP.generateProof(key, elsewhere, 'GET', undefined, at);
      outcomes[host] = (await me(app, at, proof).set('Host', host)).status;
    }
    // Today: 200 for each — the proof for GET /some/other/route is accepted at GET /me.
    expect(Object.values(outcomes)).toEqual([401, 401, 401]);
  });

  it('refuses a proof key with a huge RSA public exponent (a CPU amplifier)', async () => {
    const big = bigExponentRsaKey();
    const account = await signUp(app);
    const proof = rawProof(
      { typ: 'dpop+jwt', alg: 'RS256', jwk: big.jwk },
      { jti: randomUUID(), iat: nowSeconds(), htm: 'POST', htu: `${app.url}/auth/token` },
      (input) => sign('sha256', input, big.privateKey),
    );
    const res = await app.http().post('/auth/token').set('DPoP', proof).send(account);
    // Today: 200 DPoP — and every later proof by this key (good or garbage signature) costs the
    // server a full-size modular exponentiation (~7 ms for 3072 bits instead of ~0.1 ms).
    expect([res.status, res.body.error]).toEqual([400, 'invalid_dpop_proof']);
  }, 60_000);

  // ------------------------------------------------------------------ attacks that held

  it('held: a bound token, once accepted (and cached), is refused as Bearer, without proof, with another key, and with its replayed proof', async () => {
    const key = await newDpopKey();
    const other = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const good = await DPoP.generateProof(key, `${app.url}/me`, 'GET', undefined, at);
    expect((await me(app, at, good)).status).toBe(200);
    const results = {
      bearer: challenge(await me(app, at, undefined, 'Bearer')),
      bearerWithProof: challenge(
        await me(
          app,
          at,
          await DPoP.generateProof(key, `${app.url}/me`, 'GET', undefined, at),
          'Bearer',
        ),
      ),
      noProof: challenge(await me(app, at)),
      otherKey: challenge(
        await me(app, at, await DPoP.generateProof(other, `${app.url}/me`, 'GET', undefined, at)),
      ),
      replay: challenge(await me(app, at, good)),
      sameJtiOtherKeyStillOwnNamespace: challenge(
        await me(
          app,
          at,
          await craftProof(other, {
            htm: 'GET',
            htu: `${app.url}/me`,
            accessToken: at,
            claims: {
              jti: JSON.parse(Buffer.from(good.split('.')[1], 'base64url').toString()).jti,
            },
          }),
        ),
      ),
    };
    expect(results).toEqual({
      bearer: '401 DPoP invalid_token',
      bearerWithProof: '401 DPoP invalid_token',
      noProof: '401 DPoP invalid_dpop_proof',
      otherKey: '401 DPoP invalid_dpop_proof',
      replay: '401 DPoP invalid_dpop_proof',
      sameJtiOtherKeyStillOwnNamespace: '401 DPoP invalid_dpop_proof',
    });
    // And the token still works with a fresh proof.
    expect(
      (await me(app, at, await DPoP.generateProof(key, `${app.url}/me`, 'GET', undefined, at)))
        .status,
    ).toBe(200);
  });

  it('held: accepts exactly one of 12 parallel requests carrying the same proof', async () => {
    const key = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const proof = await DPoP.generateProof(key, `${app.url}/me`, 'GET', undefined, at);
    const statuses = await burst(12, () => me(app, at, proof).then((r) => r.status));
    expect(tally(statuses)).toEqual({ 200: 1, 401: 11 });
  });

  it('held: iat, jti, htu and header edge cases, never a 500', async () => {
    const key = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const htu = `${app.url}/me`;
    const jwk = await exportJWK(key.publicKey);
    const pub = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    const signer = KeyObject.from(key.privateKey);
    const es256 = (input: Buffer) =>
      sign('sha256', input, { key: signer, dsaEncoding: 'ieee-p1363' });
    const now = Date.now() / 1000;
    const craft = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      rawProof(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: pub, ...header },
        { jti: randomUUID(), iat: Math.floor(now), htm: 'GET', htu, ath: athOf(at), ...claims },
        es256,
      );
    const cases: [string, string, number][] = [
      ['iat as a float', craft({ iat: now }), 200],
      ['iat 5 s ahead (the tolerance)', craft({ iat: Math.floor(now) + 5 }), 200],
      ['iat 8 s ahead', craft({ iat: Math.floor(now) + 8 }), 401],
      ['iat 61 s old', craft({ iat: Math.floor(now) - 61 }), 401],
      ['iat negative', craft({ iat: -1 }), 401],
      ['iat 1e308', craft({ iat: 1e308 }), 401],
      ['iat NaN-ish string', craft({ iat: 'NaN' }), 401],
      ['jti of 256 characters', craft({ jti: 'j'.repeat(256) }), 200],
      ['jti of 257 characters', craft({ jti: 'j'.repeat(257) }), 401],
      ['jti unicode and controls', craft({ jti: '😀\u0000\u202e' }), 200],
      ['jti a number', craft({ jti: 42 }), 401],
      ['htm lower case', craft({ htm: 'get' }), 401],
      ['htu with userinfo', craft({ htu: htu.replace('http://', 'http://u:p@') }), 401],
      ['htu with a trailing slash', craft({ htu: `${htu}/` }), 401],
      ['htu https', craft({ htu: htu.replace('http:', 'https:') }), 401],
      ['htu ftp', craft({ htu: htu.replace('http:', 'ftp:') }), 401],
      ['htu of 5000 characters', craft({ htu: htu + 'a'.repeat(5000) }), 401],
      ['htu as an array', craft({ htu: [htu] }), 401],
      [
        'ath of the token in hex',
        craft({ ath: createHash('sha256').update(at).digest('hex') }),
        401,
      ],
      ['crit header', craft({}, { crit: ['exp'], exp: 1 }), 401],
      [
        'jku, x5u and kid (ignored, never fetched)',
        craft(
          {},
          { jku: 'http://127.0.0.1:1/', x5u: 'http://127.0.0.1:1/', kid: '../../etc/passwd' },
        ),
        200,
      ],
      ['ES256 with a P-384 key', craft({}, { alg: 'ES384' }), 401],
      ['alg Ed25519 with a P-256 key', craft({}, { alg: 'Ed25519' }), 401],
      ['jwk with its private member', craft({}, { jwk: { ...pub, d: 'AAAA' } }), 401],
      ['jwk as an array', craft({}, { jwk: [pub] }), 401],
      ['typ DPoP+JWT', craft({}, { typ: 'DPoP+JWT' }), 401],
      [
        'oversize proof (9000 chars)',
        'a'.repeat(4000) + '.' + 'b'.repeat(4000) + '.' + 'c'.repeat(1000),
        401,
      ],
    ];
    const outcomes: Record<string, number> = {};
    for (const [what, proof] of cases) outcomes[what] = (await me(app, at, proof)).status;
    expect(outcomes).toEqual(Object.fromEntries(cases.map(([what, , status]) => [what, status])));
  });

  it('held: X-Forwarded-Host and X-Forwarded-Proto are ignored without TRUST_PROXY', async () => {
    const key = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const forged = await DPoP.generateProof(key, 'https://evil.example/me', 'GET', undefined, at);
    const res = await me(app, at, forged).set({
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Proto': 'https',
    });
    expect(challenge(res)).toBe('401 DPoP invalid_dpop_proof');
  });

  it('held: a bound refresh token without a proof or with another key spends nothing and revokes nothing', async () => {
    const key = await newDpopKey();
    const other = await newDpopKey();
    const { at, rt } = await boundLogin(app, key);
    const refresh = async (proofKey?: DpopKeyPair) => {
      const req = app.http().post('/auth/refresh');
      if (proofKey)
        req.set('DPoP', await DPoP.generateProof(proofKey, `${app.url}/auth/refresh`, 'POST'));
      const res = await req.send({ refresh_token: rt });
      return `${res.status} ${res.body.error ?? res.body.token_type}`;
    };
    expect(await refresh()).toBe('400 invalid_dpop_proof');
    expect(await refresh(other)).toBe('400 invalid_dpop_proof');
    expect(await refresh(other)).toBe('400 invalid_dpop_proof');
    // The family lives, and the token was not spent.
    expect(
      (await me(app, at, await DPoP.generateProof(key, `${app.url}/me`, 'GET', undefined, at)))
        .status,
    ).toBe(200);
    expect(await refresh(key)).toBe('200 DPoP');
  });

  it('held: a bad proof at /auth/token is refused before the factors: no lockout counted, no token', async () => {
    const account = await signUp(app);
    const key = await newDpopKey();
    const bad = () => craftProof(key, { htm: 'POST', htu: `${app.url}/auth/elsewhere` });
    for (let i = 0; i < 4; i++) {
      const res = await app
        .http()
        .post('/auth/token')
        .set('DPoP', await bad())
        .send({ ...account, password: 'a wrong password here' });
      expect([res.status, res.body.error, res.body.access_token]).toEqual([
        400,
        'invalid_dpop_proof',
        undefined,
      ]);
    }
    // With correct factors and a bad proof: still no token.
    const withGood = await app
      .http()
      .post('/auth/token')
      .set('DPoP', await bad())
      .send(account);
    expect([withGood.status, withGood.body.access_token]).toEqual([400, undefined]);
    // LOCKOUT_MAX_ATTEMPTS=3 and 5 refused requests: had any counted, this would be 429.
    await boundLogin(app, key, account);
  });
});

describe('DPoP attacks behind a trusted proxy (SQLite, Express, TRUST_PROXY=1)', () => {
  let suite: SuiteEnvironment;
  let app: SpawnedApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', { HTTP_ADAPTER: 'express', TRUST_PROXY: '1' });
    app = await spawnSampleApp(suite.env);
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    await suite?.cleanup();
  });

  it('refuses a proof for another path smuggled through X-Forwarded-Host', async () => {
    const key = await newDpopKey();
    const { at } = await boundLogin(app, key);
    const proof = await DPoP.generateProof(
      key,
      'https://api.example.com/admin/export',
      'GET',
      undefined,
      at,
    );
    const res = await me(app, at, proof).set({
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Host': 'api.example.com/admin/export#',
    });
    // Today: 200 — a proof made for GET https://api.example.com/admin/export serves GET /me.
    expect(challenge(res)).toBe('401 DPoP invalid_dpop_proof');
  });
});
