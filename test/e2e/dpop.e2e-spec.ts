/**
 * DPoP (RFC 9449), over real HTTP against the built sample app: token requests with a proof
 * get a pair bound to the proof's key (`cnf.jkt`), which then works only with a fresh proof by
 * that key for each request; every kind of bad proof is refused (400 `invalid_dpop_proof` at
 * the token routes, 401 with a `DPoP` challenge at guarded routes) and never yields a token;
 * unbound tokens work as before. Good proofs come from panva's `dpop` client; bad ones are
 * built with jose (test/support/dpop-client.ts), and an untouched proof built the same way is
 * accepted first, so that each refusal is due to the one defect.
 *
 * The main block runs on SQLite and PostgreSQL, each on Express and Fastify. Single-purpose
 * configurations (DPOP_REQUIRED, DPOP_PUBLIC_URL, DPOP_NONCE) run once; replays across two
 * instances behind one proxy run on PostgreSQL with Redis.
 */
import { createPublicKey, webcrypto } from 'node:crypto';
import {
  CompactSign,
  createLocalJWKSet,
  generateKeyPair,
  jwtVerify,
  type CompactJWSHeaderParameters,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Response } from 'supertest';
import {
  athOf,
  craftProof,
  DpopClient,
  newDpopKey,
  nowSeconds,
  privateJwkOf,
  proofParts,
  thumbprintOf,
  withProof,
  type DpopKeyPair,
  type DpopTarget,
} from '../support/dpop-client.js';
import { assemble, hmacJws } from '../support/jwt-forge.js';
import { burst, tally, type HttpTarget } from '../support/race.js';
import { createSuiteEnvironment, type SuiteEnvironment } from '../support/sample-app.harness.js';
import { isAvailable, setups } from '../support/servers.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

const ISSUER = 'https://issuer.test';

/** A proof with `spec`'s header and claims, signed by an Ed25519 key whatever `alg` says. */
async function signedWithEd25519(
  key: DpopKeyPair,
  spec: Parameters<typeof proofParts>[1],
): Promise<string> {
  const { header, claims } = await proofParts(key, spec);
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  const signature = await webcrypto.subtle.sign('Ed25519', key.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}
/** The module's default `dpop.algorithms`, which every DPoP challenge lists in `algs`. */
const DEFAULT_ALGS = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'EdDSA',
  'Ed25519',
];
const INTROSPECTION = { id: 'dpop-suite', secret: 'an-introspection-secret-of-more-than-32-chars' };
const MAX_ATTEMPTS = 3;
const WRONG_PASSWORD = 'not the password at all';
const INVALID_CREDENTIALS = {
  statusCode: 401,
  message: 'Invalid credentials',
  error: 'Unauthorized',
};
/** The outcome of a refused proof at a token route, and at a guarded route. */
const REFUSED_AT_TOKEN_ROUTE = '400 invalid_dpop_proof';
const REFUSED_PROOF = '401 DPoP invalid_dpop_proof';
const REFUSED_TOKEN = '401 DPoP invalid_token';
const BOUND_PAIR = '200 DPoP with a token';
/** What a refusal body must not name: it does not say which check failed. */
const CHECK_NAMES =
  /\b(htu|htm|ath|jti|iat|jwk|jkt|typ|alg|cnf|nonce|signature|thumbprint|replay(ed)?|stale|future|expired)\b/i;

type Credentials = { username: string; password: string; secretKey: string };
type Account = Credentials & { id: string };
type Pair = { access_token: string; refresh_token: string };

/** Postgres and SQLite, each on Express and Fastify (MariaDB adds nothing DPoP-specific). */
const SETUPS = setups().filter(([kind]) => kind === 'sqlite' || kind === 'postgres');
const withPostgresAndRedis =
  isAvailable('postgres') && isAvailable('redis') ? describe : describe.skip;

async function signUp(target: HttpTarget): Promise<Account> {
  const username = `dpop-${Math.random().toString(36).slice(2, 10)}`;
  const password = 'correct horse battery staple';
  const res = await target.http().post('/accounts').send({ username, password }).expect(201);
  return { id: res.body.id, username, password, secretKey: res.body.secretKey };
}

function credentialsOf({ username, password, secretKey }: Credentials): Credentials {
  return { username, password, secretKey };
}

/** A login without a proof: an unbound Bearer pair. */
async function bearerLogin(target: HttpTarget, account: Credentials): Promise<Pair> {
  const res = await target.http().post('/auth/token').send(credentialsOf(account));
  expect([res.status, res.body.token_type]).toEqual([200, 'Bearer']);
  return res.body;
}

async function jwksOf(target: HttpTarget): Promise<JWTVerifyGetKey> {
  const res = await target.http().get('/.well-known/jwks.json').expect(200);
  return createLocalJWKSet(res.body as JSONWebKeySet);
}

/** The claims of a token the app issued, after checking its signature against its JWKS. */
async function verified(token: string, jwks: JWTVerifyGetKey): Promise<JWTPayload> {
  return (await jwtVerify(token, jwks, { issuer: ISSUER })).payload;
}

/** The algorithms a DPoP challenge lists in `algs`, sorted; `undefined` without `algs`. */
function algsOf(res: Response): string[] | undefined {
  const algs = /algs="([^"]*)"/.exec(String(res.headers['www-authenticate'] ?? ''))?.[1];
  return algs?.split(' ').sort();
}

/**
 * `401 DPoP invalid_dpop_proof`: the status, the challenge's scheme and error. A DPoP refusal
 * must list the accepted algorithms, all asymmetric; which ones is the business of one test.
 */
function outcome(res: Response): string {
  const challenge = String(res.headers['www-authenticate'] ?? '');
  const scheme = challenge.split(' ')[0];
  const error = /error="([^"]*)"/.exec(challenge)?.[1];
  const parts: unknown[] = [res.status, scheme, error];
  if (scheme === 'DPoP' && error !== 'use_dpop_nonce') {
    const algs = algsOf(res);
    if (!algs?.length || algs.some((alg) => /^(HS|none)/i.test(alg))) {
      parts.push(`algs=${algs?.join(' ') ?? '(none)'}`);
    }
  }
  return parts.filter(Boolean).join(' ');
}

/** `200 DPoP with a token` or `400 invalid_dpop_proof`: status, body error, token type. */
function tokenOutcome(res: Response): string {
  const body = (res.body ?? {}) as Record<string, unknown>;
  const token = body.access_token || body.refresh_token ? 'with a token' : undefined;
  return [res.status, body.error, body.token_type, token].filter(Boolean).join(' ');
}

/** Checks a 200 DPoP pair bound to `key` (access and refresh token) and returns it. */
async function expectBoundPair(
  res: Response,
  key: DpopKeyPair,
  jwks: JWTVerifyGetKey,
): Promise<Pair> {
  expect(tokenOutcome(res)).toBe(BOUND_PAIR);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body).toEqual({
    access_token: expect.any(String),
    token_type: 'DPoP',
    expires_in: expect.any(Number),
    refresh_token: expect.any(String),
    refresh_expires_in: expect.any(Number),
  });
  const jkt = await thumbprintOf(key);
  expect((await verified(res.body.access_token, jwks)).cnf).toEqual({ jkt });
  expect((await verified(res.body.refresh_token, jwks)).cnf).toEqual({ jkt });
  return res.body;
}

function guarded(target: HttpTarget, token: string, proof?: string | string[], scheme = 'DPoP') {
  const req = target.http().get('/me').set('Authorization', `${scheme} ${token}`);
  return proof === undefined ? req : withProof(req, proof);
}

/** What a proof is made for: the request's method and URL, and the token for `ath`. */
interface ProofRequest {
  htm: string;
  htu: string;
  accessToken?: string;
}

/** The client's key, and a key of someone else. */
interface Keys {
  key: DpopKeyPair;
  other: DpopKeyPair;
}

/** One thing wrong with an otherwise good proof. */
interface Defect {
  what: string;
  /** Only meaningful at a guarded route (`ath`, the bound key). */
  resourceOnly?: boolean;
  proof(keys: Keys, request: ProofRequest): Promise<string | string[]>;
}

function withUrl(htu: string, change: (url: URL) => void): string {
  const url = new URL(htu);
  change(url);
  return url.href;
}

const DEFECTS: Defect[] = [
  {
    what: 'htm of another method',
    proof: ({ key }, r) => craftProof(key, { ...r, htm: r.htm === 'GET' ? 'POST' : 'GET' }),
  },
  {
    what: 'htm in lower case',
    proof: ({ key }, r) => craftProof(key, { ...r, htm: r.htm.toLowerCase() }),
  },
  {
    what: 'htu of another path',
    proof: ({ key }, r) =>
      craftProof(key, { ...r, htu: withUrl(r.htu, (u) => (u.pathname = '/elsewhere')) }),
  },
  {
    what: 'htu of another host',
    proof: ({ key }, r) =>
      craftProof(key, { ...r, htu: withUrl(r.htu, (u) => (u.hostname = 'evil.example')) }),
  },
  {
    what: 'htu of another scheme',
    proof: ({ key }, r) =>
      craftProof(key, { ...r, htu: withUrl(r.htu, (u) => (u.protocol = 'https:')) }),
  },
  {
    what: 'htu of another port',
    proof: ({ key }, r) =>
      craftProof(key, {
        ...r,
        htu: withUrl(r.htu, (u) => (u.port = String(Number(u.port || 80) + 1))),
      }),
  },
  {
    what: 'htu that is only the path',
    proof: ({ key }, r) => craftProof(key, { ...r, htu: new URL(r.htu).pathname }),
  },
  {
    // proofMaxAge (60 s) plus the clock tolerance (5 s), and some.
    what: 'iat 75 s old',
    proof: ({ key }, r) => craftProof(key, { ...r, claims: { iat: nowSeconds() - 75 } }),
  },
  {
    what: 'iat 30 s ahead',
    proof: ({ key }, r) => craftProof(key, { ...r, claims: { iat: nowSeconds() + 30 } }),
  },
  {
    what: 'iat as a string',
    proof: ({ key }, r) => craftProof(key, { ...r, claims: { iat: String(nowSeconds()) } }),
  },
  ...(['jti', 'iat', 'htm', 'htu'] as const).map((claim): Defect => ({
    what: `no ${claim}`,
    proof: ({ key }, r) => craftProof(key, { ...r, claims: { [claim]: undefined } }),
  })),
  {
    what: 'alg none, no signature',
    proof: async ({ key }, r) => {
      const { header, claims } = await proofParts(key, r);
      return assemble({ ...header, alg: 'none' }, claims, '');
    },
  },
  {
    what: 'HS256 with a symmetric jwk',
    proof: async ({ key }, r) => {
      const secret = Buffer.alloc(32, 7);
      const { header, claims } = await proofParts(key, r);
      const jwk = { kty: 'oct', k: secret.toString('base64url') };
      return hmacJws(secret, { ...header, alg: 'HS256', jwk }, claims);
    },
  },
  {
    what: 'HS256 keyed with the public key',
    proof: async ({ key }, r) => {
      const { header, claims } = await proofParts(key, r);
      const pem = createPublicKey({ key: header.jwk as never, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      });
      return hmacJws(pem, { ...header, alg: 'HS256' }, claims);
    },
  },
  {
    what: 'the private key in jwk',
    proof: async ({ key }, r) =>
      craftProof(key, { ...r, header: { jwk: await privateJwkOf(key) } }),
  },
  {
    what: 'typ JWT',
    proof: ({ key }, r) => craftProof(key, { ...r, header: { typ: 'JWT' } }),
  },
  {
    what: 'no typ',
    proof: ({ key }, r) => craftProof(key, { ...r, header: { typ: undefined } }),
  },
  {
    what: 'no jwk',
    proof: ({ key }, r) => craftProof(key, { ...r, header: { jwk: undefined } }),
  },
  {
    what: 'a signature by another key',
    proof: ({ key, other }, r) => craftProof(key, { ...r, signWith: other }),
  },
  {
    what: 'a corrupted signature',
    proof: async ({ key }, r) => {
      const [header, payload, signature] = (await craftProof(key, r)).split('.');
      const first = signature[0] === 'A' ? 'B' : 'A';
      return `${header}.${payload}.${first}${signature.slice(1)}`;
    },
  },
  {
    what: 'claims that are not JSON',
    proof: async ({ key }, r) => {
      const { header } = await proofParts(key, r);
      return new CompactSign(Buffer.from('not json'))
        .setProtectedHeader(header as CompactJWSHeaderParameters)
        .sign(key.privateKey);
    },
  },
  {
    what: 'two DPoP headers, each a good proof',
    proof: async ({ key }, r) => [await craftProof(key, r), await craftProof(key, r)],
  },
  { what: 'garbage', proof: async () => 'garbage' },
  { what: 'three empty parts', proof: async () => '..' },
  {
    what: 'no ath',
    resourceOnly: true,
    proof: ({ key }, r) => craftProof(key, { ...r, accessToken: undefined }),
  },
  {
    what: 'ath of another token',
    resourceOnly: true,
    proof: ({ key }, r) => craftProof(key, { ...r, claims: { ath: athOf('another token') } }),
  },
  {
    what: 'a good proof by another key',
    resourceOnly: true,
    proof: ({ other }, r) => craftProof(other, r),
  },
];

describe.each(SETUPS)('DPoP on %s with %s', (kind, adapter) => {
  let suite: SuiteEnvironment;
  let app: SpawnedApp;
  let jwks: JWTVerifyGetKey;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      HTTP_ADAPTER: adapter,
      TRUST_PROXY: '1',
      INTROSPECTION_CLIENTS: `${INTROSPECTION.id}:${INTROSPECTION.secret}`,
      LOCKOUT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOCKOUT_SECONDS: '120',
    });
    app = await spawnSampleApp(suite.env);
    jwks = await jwksOf(app);
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    await suite?.cleanup();
  });

  /** A new account logged in with a proof by a new key: the client, and its bound pair. */
  async function boundSession(): Promise<{ account: Account; client: DpopClient; pair: Pair }> {
    const account = await signUp(app);
    const client = new DpopClient(app, await newDpopKey());
    const pair = await expectBoundPair(await client.login(account), client.key, jwks);
    return { account, client, pair };
  }

  describe('issue and use', () => {
    it('binds the pair to the key of a proof from the dpop client, and serves GET /me with fresh proofs', async () => {
      const { account, client, pair } = await boundSession();
      for (let i = 0; i < 2; i++) {
        const me = await client.get('/me', pair.access_token);
        expect(me.status).toBe(200);
        expect(me.body).toEqual({ id: account.id, username: account.username });
      }
    });

    it('issues an unbound Bearer pair without a proof, which works as before', async () => {
      const account = await signUp(app);
      const pair = await bearerLogin(app, account);
      expect((await verified(pair.access_token, jwks)).cnf).toBeUndefined();
      expect((await verified(pair.refresh_token, jwks)).cnf).toBeUndefined();
      await guarded(app, pair.access_token, undefined, 'Bearer').expect(200);
      const bad = await guarded(app, `${pair.access_token}x`, undefined, 'Bearer').expect(401);
      expect(bad.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      const refreshed = await app
        .http()
        .post('/auth/refresh')
        .send({ refresh_token: pair.refresh_token });
      expect([refreshed.status, refreshed.body.token_type]).toEqual([200, 'Bearer']);
    });

    it('accepts keys of ES256, ES384, PS256, RS256, EdDSA and Ed25519 (RFC 9864)', async () => {
      const account = await signUp(app);
      const keys: [string, DpopKeyPair, 'dpop' | 'jose'][] = [
        ['ES256', await newDpopKey('ES256'), 'dpop'],
        ['ES384', await generateKeyPair('ES384', { extractable: true }), 'jose'],
        ['PS256', await newDpopKey('PS256'), 'dpop'],
        ['RS256', await newDpopKey('RS256'), 'dpop'],
        ['EdDSA', await newDpopKey('Ed25519'), 'jose'],
        ['Ed25519', await newDpopKey('Ed25519'), 'dpop'],
      ];
      const outcomes: Record<string, string> = {};
      for (const [alg, key, by] of keys) {
        // The dpop client signs ECDSA only on P-256 and writes "Ed25519" for Ed25519 keys: jose
        // writes "EdDSA" and signs P-384.
        const client = new DpopClient(app, key);
        const proof = (htm: string, path: string, accessToken?: string) =>
          by === 'dpop'
            ? client.proof(htm, path, accessToken)
            : craftProof(key, { htm, htu: client.htu(path), accessToken });
        const login = await app
          .http()
          .post('/auth/token')
          .set('DPoP', await proof('POST', '/auth/token'))
          .send(credentialsOf(account));
        if (login.status !== 200) {
          outcomes[alg] = `login: ${tokenOutcome(login)}`;
          continue;
        }
        const pair = await expectBoundPair(login, key, jwks);
        const me = await guarded(
          app,
          pair.access_token,
          await proof('GET', '/me', pair.access_token),
        );
        outcomes[alg] = `GET /me: ${me.status}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(keys.map(([alg]) => [alg, 'GET /me: 200'])));
    });

    it('announces the default algorithms in algs, and accepts no other', async () => {
      const { account, pair } = await boundSession();
      const refused = await guarded(app, pair.access_token, 'garbage');
      expect(outcome(refused)).toBe(REFUSED_PROOF);
      expect(algsOf(refused)).toEqual([...DEFAULT_ALGS].sort());
      // An Ed25519 key signs as "EdDSA" or, in RFC 9864's name that panva's dpop writes,
      // "Ed25519": both are listed. Names that are not listed are refused.
      const key = await newDpopKey('Ed25519');
      const loginAs = async (alg: string) => {
        const spec = { htm: 'POST', htu: `${app.url}/auth/token`, header: { alg } };
        // jose signs only under the names it knows: the others are signed here, with the same
        // Ed25519 key, so that the name is all that differs.
        const proof = ['EdDSA', 'Ed25519'].includes(alg)
          ? await craftProof(key, spec)
          : await signedWithEd25519(key, spec);
        return tokenOutcome(
          await app.http().post('/auth/token').set('DPoP', proof).send(credentialsOf(account)),
        );
      };
      expect({
        EdDSA: await loginAs('EdDSA'),
        Ed25519: await loginAs('Ed25519'),
        Ed448: await loginAs('Ed448'),
        ES256K: await loginAs('ES256K'),
      }).toEqual({
        EdDSA: BOUND_PAIR,
        Ed25519: BOUND_PAIR,
        Ed448: REFUSED_AT_TOKEN_ROUTE,
        ES256K: REFUSED_AT_TOKEN_ROUTE,
      });
    });

    it('compares htu without query or fragment, normalising case, default port and dot segments', async () => {
      const { client, pair } = await boundSession();
      const token = pair.access_token;
      const cases: [what: string, path: string, htu: string, host?: string][] = [
        ['a query on the request', '/me?view=full', `${app.url}/me`],
        ['query and fragment in htu', '/me?view=full', `${app.url}/me?view=full#top`],
        ['dot segments in htu', '/me', `${app.url}/auth/../me`],
        [
          'upper-case scheme and host in htu',
          '/me',
          'HTTP://API.EXAMPLE.TEST/me',
          'api.example.test',
        ],
        ['an upper-case Host', '/me', 'http://api.example.test/me', 'API.Example.Test'],
        ['the default port in htu', '/me', 'http://api.example.test:80/me', 'api.example.test'],
        ['the default port in Host', '/me', 'http://api.example.test/me', 'api.example.test:80'],
      ];
      const outcomes: Record<string, number> = {};
      for (const [what, path, htu, host] of cases) {
        const req = app
          .http()
          .get(path)
          .set('Authorization', `DPoP ${token}`)
          .set('DPoP', await craftProof(client.key, { htm: 'GET', htu, accessToken: token }));
        outcomes[what] = (await (host ? req.set('Host', host) : req)).status;
      }
      expect(outcomes).toEqual(Object.fromEntries(cases.map(([what]) => [what, 200])));
    });

    it('takes htu from X-Forwarded-Proto and X-Forwarded-Host behind a trusted proxy (TRUST_PROXY=1)', async () => {
      const account = await signUp(app);
      const key = await newDpopKey();
      const forwarded = {
        'X-Forwarded-For': '203.0.113.7',
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-Host': 'api.example.com',
      };
      const viaProxy = new DpopClient(app, key, 'https://api.example.com', forwarded);
      const pair = await expectBoundPair(await viaProxy.login(account), key, jwks);
      const token = pair.access_token;
      expect((await viaProxy.get('/me', token)).status).toBe(200);

      const outcomes: Record<string, string> = {};
      const cases: [what: string, host: string, htu: string][] = [
        ['the forwarded host and scheme', 'api.example.com', 'https://api.example.com/me'],
        ['the default port forwarded', 'api.example.com:443', 'https://api.example.com/me'],
        ['another port forwarded', 'api.example.com:8443', 'https://api.example.com:8443/me'],
        ['the socket’s own URL', 'api.example.com', `${app.url}/me`],
        ['the forwarded host over http', 'api.example.com', 'http://api.example.com/me'],
      ];
      for (const [what, host, htu] of cases) {
        const res = await guarded(
          app,
          token,
          await craftProof(key, { htm: 'GET', htu, accessToken: token }),
        ).set({ ...forwarded, 'X-Forwarded-Host': host });
        outcomes[what] = outcome(res);
      }
      expect(outcomes).toEqual({
        'the forwarded host and scheme': '200',
        'the default port forwarded': '200',
        'another port forwarded': '200',
        'the socket’s own URL': REFUSED_PROOF,
        'the forwarded host over http': REFUSED_PROOF,
      });
      // Without forwarded headers, the URL the socket was addressed by.
      expect((await new DpopClient(app, key).get('/me', token)).status).toBe(200);
    });
  });

  describe('guarded routes', () => {
    it('refuses every defective proof with 401 and a DPoP challenge, in one body that names no check', async () => {
      const { client, pair } = await boundSession();
      const keys = { key: client.key, other: await newDpopKey() };
      const request: ProofRequest = {
        htm: 'GET',
        htu: `${app.url}/me`,
        accessToken: pair.access_token,
      };
      const control = async () =>
        outcome(await guarded(app, pair.access_token, await craftProof(client.key, request)));
      expect(await control()).toBe('200');
      const outcomes: Record<string, string> = {};
      const bodies = new Map<string, string>();
      for (const defect of DEFECTS) {
        const res = await guarded(app, pair.access_token, await defect.proof(keys, request));
        outcomes[defect.what] = outcome(res);
        bodies.set(JSON.stringify(res.body), defect.what);
      }
      expect(outcomes).toEqual(Object.fromEntries(DEFECTS.map((d) => [d.what, REFUSED_PROOF])));
      expect([...bodies.keys()]).toHaveLength(1);
      expect([...bodies.keys()][0]).not.toMatch(CHECK_NAMES);
      // The token itself is fine: the refusals were the proofs'.
      expect(await control()).toBe('200');
    });

    it('refuses a bound token without a proof, or as Bearer; and an unbound token with the DPoP scheme', async () => {
      const { client, pair } = await boundSession();
      const bound = pair.access_token;
      const unbound = (await bearerLogin(app, await signUp(app))).access_token;
      const outcomes = {
        'bound, DPoP scheme, no proof': outcome(await guarded(app, bound)),
        'bound, as Bearer': outcome(await guarded(app, bound, undefined, 'Bearer')),
        'bound, as Bearer with a good proof': outcome(
          await guarded(app, bound, await client.proof('GET', '/me', bound), 'Bearer'),
        ),
        'unbound, DPoP scheme with a good proof': outcome(
          await guarded(app, unbound, await client.proof('GET', '/me', unbound)),
        ),
      };
      expect(outcomes).toEqual({
        'bound, DPoP scheme, no proof': REFUSED_PROOF,
        'bound, as Bearer': REFUSED_TOKEN,
        'bound, as Bearer with a good proof': REFUSED_TOKEN,
        'unbound, DPoP scheme with a good proof': REFUSED_TOKEN,
      });
      // Both still work the right way.
      expect((await client.get('/me', bound)).status).toBe(200);
      expect((await guarded(app, unbound, undefined, 'Bearer')).status).toBe(200);
    });

    it('refuses a replayed proof, and a new proof that reuses an accepted jti', async () => {
      const { client, pair } = await boundSession();
      const token = pair.access_token;
      const proof = await client.proof('GET', '/me', token);
      expect(outcome(await guarded(app, token, proof))).toBe('200');
      expect(outcome(await guarded(app, token, proof))).toBe(REFUSED_PROOF);
      const { jti } = JSON.parse(Buffer.from(proof.split('.')[1], 'base64url').toString());
      const reused = await craftProof(client.key, {
        htm: 'GET',
        htu: client.htu('/me'),
        accessToken: token,
        claims: { jti },
      });
      expect(outcome(await guarded(app, token, reused))).toBe(REFUSED_PROOF);
      expect((await client.get('/me', token)).status).toBe(200);
    });

    it('accepts exactly one of 10 parallel requests carrying the same proof', async () => {
      const { client, pair } = await boundSession();
      const proof = await client.proof('GET', '/me', pair.access_token);
      const answers = await burst(10, () => guarded(app, pair.access_token, proof));
      expect(tally(answers.map((res) => res.status))).toEqual({ 200: 1, 401: 9 });
      expect(new Set(answers.filter((r) => r.status === 401).map(outcome))).toEqual(
        new Set([REFUSED_PROOF]),
      );
    });
  });

  describe('token routes', () => {
    it('answers 400 invalid_dpop_proof to every defective proof at POST /auth/token, never a token', async () => {
      const account = await signUp(app);
      const keys = { key: await newDpopKey(), other: await newDpopKey() };
      const request: ProofRequest = { htm: 'POST', htu: `${app.url}/auth/token` };
      const login = async (proof: string | string[]) =>
        tokenOutcome(
          await withProof(app.http().post('/auth/token'), proof).send(credentialsOf(account)),
        );
      expect(await login(await craftProof(keys.key, request))).toBe(BOUND_PAIR);
      const defects = DEFECTS.filter((d) => !d.resourceOnly);
      const outcomes: Record<string, string> = {};
      for (const defect of defects)
        outcomes[defect.what] = await login(await defect.proof(keys, request));
      expect(outcomes).toEqual(
        Object.fromEntries(defects.map((d) => [d.what, REFUSED_AT_TOKEN_ROUTE])),
      );
      expect(await login(await craftProof(keys.key, request))).toBe(BOUND_PAIR);
    });

    it('refuses a replayed login proof, and accepts one of 6 parallel logins with the same proof', async () => {
      const account = await signUp(app);
      const client = new DpopClient(app, await newDpopKey());
      const login = (proof: string) =>
        app.http().post('/auth/token').set('DPoP', proof).send(credentialsOf(account));
      const once = await client.proof('POST', '/auth/token');
      expect(tokenOutcome(await login(once))).toBe(BOUND_PAIR);
      expect(tokenOutcome(await login(once))).toBe(REFUSED_AT_TOKEN_ROUTE);

      const shared = await client.proof('POST', '/auth/token');
      const answers = (await burst(6, () => login(shared))).map(tokenOutcome);
      expect(tally(answers.map((a) => Number(a.split(' ')[0])))).toEqual({ 200: 1, 400: 5 });
      expect(answers.filter((a) => a !== BOUND_PAIR)).toEqual(
        Array(5).fill(REFUSED_AT_TOKEN_ROUTE),
      );
    });

    it('still checks the factors: a good proof with a wrong password answers 401', async () => {
      const account = await signUp(app);
      const client = new DpopClient(app, await newDpopKey());
      const res = await client.login({ ...account, password: WRONG_PASSWORD });
      expect(res.status).toBe(401);
      expect(res.body).toEqual(INVALID_CREDENTIALS);
    });

    it('refreshes a bound pair only with the bound key, and binds the new pair to it', async () => {
      const { client, pair } = await boundSession();
      const next = await expectBoundPair(
        await client.refresh(pair.refresh_token),
        client.key,
        jwks,
      );
      expect((await client.get('/me', next.access_token)).status).toBe(200);
      const third = await expectBoundPair(
        await client.refresh(next.refresh_token),
        client.key,
        jwks,
      );
      expect((await client.get('/me', third.access_token)).status).toBe(200);
    });

    it('refuses a bound refresh token without a proof or with another key’s, without spending it or revoking its family', async () => {
      const { client, pair } = await boundSession();
      const thief = new DpopClient(app, await newDpopKey());
      const body = { refresh_token: pair.refresh_token };
      const attempts = {
        'no proof': tokenOutcome(await app.http().post('/auth/refresh').send(body)),
        'a proof by another key': tokenOutcome(await thief.refresh(pair.refresh_token)),
        'a proof by the bound key for another URL': tokenOutcome(
          await app
            .http()
            .post('/auth/refresh')
            .set('DPoP', await client.proof('POST', '/auth/token'))
            .send(body),
        ),
      };
      expect(attempts).toEqual({
        'no proof': REFUSED_AT_TOKEN_ROUTE,
        'a proof by another key': REFUSED_AT_TOKEN_ROUTE,
        'a proof by the bound key for another URL': REFUSED_AT_TOKEN_ROUTE,
      });
      // Nothing was revoked: the login's access token works, and its refresh token refreshes.
      expect((await client.get('/me', pair.access_token)).status).toBe(200);
      await expectBoundPair(await client.refresh(pair.refresh_token), client.key, jwks);
    });

    it('revokes the family when a spent bound refresh token comes back, even with the right key', async () => {
      const { client, pair } = await boundSession();
      const next = await expectBoundPair(
        await client.refresh(pair.refresh_token),
        client.key,
        jwks,
      );
      expect((await client.refresh(pair.refresh_token)).status).toBe(401);
      expect((await client.refresh(next.refresh_token)).status).toBe(401);
      expect((await client.get('/me', next.access_token)).status).toBe(401);
    });

    it('binds to the proof’s key the pair refreshed from an unbound refresh token', async () => {
      const account = await signUp(app);
      const unbound = await bearerLogin(app, account);
      const client = new DpopClient(app, await newDpopKey());
      const bound = await expectBoundPair(
        await client.refresh(unbound.refresh_token),
        client.key,
        jwks,
      );
      expect((await client.get('/me', bound.access_token)).status).toBe(200);
      expect(outcome(await guarded(app, bound.access_token, undefined, 'Bearer'))).toBe(
        REFUSED_TOKEN,
      );
    });
  });

  describe('revocation, introspection, re-authentication and lockout', () => {
    it('revokes a DPoP-bound token at POST /auth/revoke (DPoP scheme and proof), not as Bearer', async () => {
      const { account, client, pair } = await boundSession();
      const asBearer = await app
        .http()
        .post('/auth/revoke')
        .set('Authorization', `Bearer ${pair.access_token}`);
      expect(outcome(asBearer)).toBe(REFUSED_TOKEN);
      const noProof = await app
        .http()
        .post('/auth/revoke')
        .set('Authorization', `DPoP ${pair.access_token}`);
      expect(outcome(noProof)).toBe(REFUSED_PROOF);
      expect((await client.get('/me', pair.access_token)).status).toBe(200);

      // RFC 7009: another token of the account, named in the body.
      const other = await expectBoundPair(await client.login(account), client.key, jwks);
      const named = await client.send('post', '/auth/revoke', pair.access_token, {
        token: other.access_token,
      });
      expect(outcome(named)).toBe('204');
      expect((await client.get('/me', other.access_token)).status).toBe(401);
      expect((await client.get('/me', pair.access_token)).status).toBe(200);

      expect(outcome(await client.send('post', '/auth/revoke', pair.access_token))).toBe('204');
      expect((await client.get('/me', pair.access_token)).status).toBe(401);
      expect((await client.refresh(pair.refresh_token)).status).toBe(401);
    });

    it('introspects a bound token with cnf.jkt, an unbound one without', async () => {
      const { account, client, pair } = await boundSession();
      const introspect = (token: string) =>
        app
          .http()
          .post('/auth/introspect')
          .auth(INTROSPECTION.id, INTROSPECTION.secret)
          .send({ token })
          .expect(200);
      const bound = await introspect(pair.access_token);
      expect(bound.body).toMatchObject({
        active: true,
        token_type: 'access_token',
        sub: account.id,
        cnf: { jkt: await thumbprintOf(client.key) },
      });
      const unbound = await introspect((await bearerLogin(app, account)).access_token);
      expect(unbound.body.active).toBe(true);
      expect(unbound.body.cnf).toBeUndefined();
    });

    it('changes the password with a DPoP token and the factors (POST /me/password), revoking it', async () => {
      const { account, client, pair } = await boundSession();
      const newPassword = 'a brand new passphrase';
      // A bound token as Bearer changes nothing, even with the right factors.
      const stolen = await app
        .http()
        .post('/me/password')
        .set('Authorization', `Bearer ${pair.access_token}`)
        .send({ password: account.password, secretKey: account.secretKey, newPassword });
      expect(outcome(stolen)).toBe(REFUSED_TOKEN);
      const changed = await client.send('post', '/me/password', pair.access_token, {
        password: account.password,
        secretKey: account.secretKey,
        newPassword,
      });
      expect(changed.status).toBe(204);
      expect((await client.get('/me', pair.access_token)).status).toBe(401);
      expect((await client.login(account)).status).toBe(401);
      await expectBoundPair(
        await client.login({ ...account, password: newPassword }),
        client.key,
        jwks,
      );
    });

    it('counts wrong re-authentications and DPoP logins toward one lockout', async () => {
      const { account, client, pair } = await boundSession();
      const rotate = (password: string) =>
        client.send('post', '/me/secret-key', pair.access_token, {
          password,
          secretKey: account.secretKey,
        });
      for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
        const res = await rotate(WRONG_PASSWORD);
        expect([res.status, res.body]).toEqual([401, INVALID_CREDENTIALS]);
      }
      const wrongLogin = await client.login({ ...account, password: WRONG_PASSWORD });
      expect([wrongLogin.status, wrongLogin.body]).toEqual([401, INVALID_CREDENTIALS]);
      for (const res of [await rotate(account.password), await client.login(account)]) {
        expect(res.status).toBe(429);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
    });
  });
});

describe('DPOP_REQUIRED=true (SQLite, Express)', () => {
  let suite: SuiteEnvironment;
  let app: SpawnedApp;
  let jwks: JWTVerifyGetKey;
  let account: Account;
  let client: DpopClient;
  /** Issued before DPoP became required, by the same app on the same database and keys. */
  let before: { unbound: Pair; bound: Pair };

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', { HTTP_ADAPTER: 'express' });
    const plain = await spawnSampleApp(suite.env);
    try {
      account = await signUp(plain);
      client = new DpopClient(plain, await newDpopKey());
      const unbound = await bearerLogin(plain, account);
      const bound = await expectBoundPair(
        await client.login(account),
        client.key,
        await jwksOf(plain),
      );
      before = { unbound, bound };
    } finally {
      await plain.stop();
    }
    app = await spawnSampleApp({ ...suite.env, DPOP_REQUIRED: 'true' });
    client = new DpopClient(app, client.key);
    jwks = await jwksOf(app);
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    await suite?.cleanup();
  });

  it('refuses token requests without a proof (400 invalid_dpop_proof)', async () => {
    const login = await app.http().post('/auth/token').send(credentialsOf(account));
    expect(tokenOutcome(login)).toBe(REFUSED_AT_TOKEN_ROUTE);
    for (const pair of [before.unbound, before.bound]) {
      const refresh = await app
        .http()
        .post('/auth/refresh')
        .send({ refresh_token: pair.refresh_token });
      expect(tokenOutcome(refresh)).toBe(REFUSED_AT_TOKEN_ROUTE);
    }
  });

  it('issues and serves bound tokens, those issued before included', async () => {
    expect((await client.get('/me', before.bound.access_token)).status).toBe(200);
    const pair = await expectBoundPair(await client.login(account), client.key, jwks);
    expect((await client.get('/me', pair.access_token)).status).toBe(200);
    const next = await expectBoundPair(
      await client.refresh(before.bound.refresh_token),
      client.key,
      jwks,
    );
    expect((await client.get('/me', next.access_token)).status).toBe(200);
  });

  it('refuses an unbound token, as Bearer with a DPoP challenge, and with the DPoP scheme', async () => {
    const token = before.unbound.access_token;
    const asBearer = await guarded(app, token, undefined, 'Bearer');
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers['www-authenticate']).toMatch(/\bDPoP\b/);
    const asDpop = await guarded(app, token, await client.proof('GET', '/me', token));
    expect(outcome(asDpop)).toBe(REFUSED_TOKEN);
  });

  it('ignores X-Forwarded-Proto and X-Forwarded-Host from a client it does not trust', async () => {
    const token = before.bound.access_token;
    const spoofed = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example.com' };
    const forwardedHtu = await craftProof(client.key, {
      htm: 'GET',
      htu: 'https://api.example.com/me',
      accessToken: token,
    });
    expect(outcome(await guarded(app, token, forwardedHtu).set(spoofed))).toBe(REFUSED_PROOF);
    const socketHtu = await client.proof('GET', '/me', token);
    expect(outcome(await guarded(app, token, socketHtu).set(spoofed))).toBe('200');
  });
});

describe('DPOP_PUBLIC_URL=https://api.example.com/v1 (SQLite, Fastify)', () => {
  const PUBLIC_URL = 'https://api.example.com/v1';
  let suite: SuiteEnvironment;
  let app: SpawnedApp;
  let jwks: JWTVerifyGetKey;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      HTTP_ADAPTER: 'fastify',
      DPOP_PUBLIC_URL: PUBLIC_URL,
    });
    app = await spawnSampleApp(suite.env);
    jwks = await jwksOf(app);
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
    await suite?.cleanup();
  });

  it('checks htu against the public URL, whatever the Host header says', async () => {
    const account = await signUp(app);
    const key = await newDpopKey();
    const direct = new DpopClient(app, key);
    expect(tokenOutcome(await direct.login(account))).toBe(REFUSED_AT_TOKEN_ROUTE);
    const client = new DpopClient(app, key, PUBLIC_URL);
    const token = (await expectBoundPair(await client.login(account), key, jwks)).access_token;

    const cases: [what: string, htu: string, host: string | undefined, expected: string][] = [
      ['the public URL', `${PUBLIC_URL}/me`, undefined, '200'],
      ['the public URL, another Host', `${PUBLIC_URL}/me`, 'internal.svc:8080', '200'],
      [
        'the public URL with its default port',
        'https://api.example.com:443/v1/me',
        undefined,
        '200',
      ],
      ['the socket’s own URL', `${app.url}/me`, undefined, REFUSED_PROOF],
      ['the URL Host names', 'http://internal.svc:8080/me', 'internal.svc:8080', REFUSED_PROOF],
      [
        'the public host without the prefix',
        'https://api.example.com/me',
        undefined,
        REFUSED_PROOF,
      ],
      ['the public URL over http', 'http://api.example.com/v1/me', undefined, REFUSED_PROOF],
    ];
    const outcomes: Record<string, string> = {};
    for (const [what, htu, host] of cases) {
      const req = guarded(
        app,
        token,
        await craftProof(key, { htm: 'GET', htu, accessToken: token }),
      );
      outcomes[what] = outcome(await (host ? req.set('Host', host) : req));
    }
    expect(outcomes).toEqual(
      Object.fromEntries(cases.map(([what, , , expected]) => [what, expected])),
    );
  });
});

describe('DPOP_NONCE=true, two instances with the same keys (SQLite, Express and Fastify)', () => {
  let suites: SuiteEnvironment[] = [];
  let a: SpawnedApp;
  let b: SpawnedApp;
  let jwksA: JWTVerifyGetKey;

  beforeAll(async () => {
    const first = await createSuiteEnvironment('sqlite', {
      HTTP_ADAPTER: 'express',
      DPOP_NONCE: 'true',
    });
    const second = await createSuiteEnvironment('sqlite', {
      HTTP_ADAPTER: 'fastify',
      DPOP_NONCE: 'true',
      // Each its own database; the nonces depend on the keys alone.
      JWT_KEYS_FILE: first.env.JWT_KEYS_FILE,
    });
    suites = [first, second];
    [a, b] = await Promise.all([spawnSampleApp(first.env), spawnSampleApp(second.env)]);
    jwksA = await jwksOf(a);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    for (const suite of suites) await suite.cleanup();
  });

  /** Asserts a 400 use_dpop_nonce with a DPoP-Nonce header, and returns the nonce. */
  function nonceFromTokenRoute(res: Response): string {
    expect(tokenOutcome(res)).toBe('400 use_dpop_nonce');
    expect(res.headers['dpop-nonce']).toEqual(expect.stringMatching(/^[\x21-\x7e]+$/));
    return res.headers['dpop-nonce'];
  }

  it('answers use_dpop_nonce with a DPoP-Nonce at the token routes, and issues on the retry', async () => {
    const account = await signUp(a);
    const client = new DpopClient(a, await newDpopKey());
    nonceFromTokenRoute(await client.login(account, 'a-nonce-this-server-never-made'));
    const nonce = nonceFromTokenRoute(await client.login(account));
    const pair = await expectBoundPair(await client.login(account, nonce), client.key, jwksA);

    const refreshNonce = nonceFromTokenRoute(await client.refresh(pair.refresh_token));
    // Not spent by the refusal.
    await expectBoundPair(
      await client.refresh(pair.refresh_token, refreshNonce),
      client.key,
      jwksA,
    );
  });

  it('answers 401 use_dpop_nonce with a DPoP-Nonce at guarded routes, and serves the retry', async () => {
    const account = await signUp(a);
    const client = new DpopClient(a, await newDpopKey());
    const loginNonce = nonceFromTokenRoute(await client.login(account));
    const { access_token } = await expectBoundPair(
      await client.login(account, loginNonce),
      client.key,
      jwksA,
    );
    for (const nonce of [undefined, 'a-nonce-this-server-never-made']) {
      const res = await client.get('/me', access_token, nonce);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^DPoP (.*, )?error="use_dpop_nonce"/);
      expect(res.headers['dpop-nonce']).toEqual(expect.any(String));
    }
    const challenge = await client.get('/me', access_token);
    const retry = await client.get('/me', access_token, challenge.headers['dpop-nonce']);
    expect(retry.status).toBe(200);
    expect(retry.body.username).toBe(account.username);
  });

  it('accepts on each instance the nonces of the other', async () => {
    const key = await newDpopKey();
    const onA = new DpopClient(a, key);
    const onB = new DpopClient(b, key);
    const atA = await signUp(a);
    // B has a database of its own: the same credentials, signed up there too.
    const atB = await b
      .http()
      .post('/accounts')
      .send({ username: atA.username, password: atA.password })
      .expect(201);
    const accountB = { ...atA, secretKey: atB.body.secretKey as string };
    const fromA = nonceFromTokenRoute(await onA.login(atA));
    const fromB = nonceFromTokenRoute(await onB.login(accountB));
    expect(tokenOutcome(await onB.login(accountB, fromA))).toBe(BOUND_PAIR);
    expect(tokenOutcome(await onA.login(atA, fromB))).toBe(BOUND_PAIR);
  });
});

withPostgresAndRedis('DPoP on two instances sharing PostgreSQL and Redis', () => {
  /** Both instances sit behind one proxy on the same host (TRUST_PROXY=loopback), at this address. */
  const ADDRESS = 'https://api.example.test';
  const PROXIED = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example.test' };
  let suite: SuiteEnvironment;
  let a: SpawnedApp;
  let b: SpawnedApp;
  let jwks: JWTVerifyGetKey;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('postgres', {
      REDIS_URL: process.env.TEST_REDIS_URL!,
      TRUST_PROXY: 'loopback',
    });
    // One after the other: both apply the migrations to the same fresh database.
    a = await spawnSampleApp({ ...suite.env, HTTP_ADAPTER: 'express' });
    b = await spawnSampleApp({ ...suite.env, HTTP_ADAPTER: 'fastify' });
    jwks = await jwksOf(a);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await suite?.cleanup();
  });

  const clientOf = (target: DpopTarget, key: DpopKeyPair) =>
    new DpopClient(target, key, ADDRESS, PROXIED);

  it('refuses on B a proof A accepted, at the token route and at a guarded route', async () => {
    const account = await signUp(a);
    const key = await newDpopKey();
    const [onA, onB] = [clientOf(a, key), clientOf(b, key)];
    const loginProof = await onA.proof('POST', '/auth/token');
    const login = (target: HttpTarget) =>
      target
        .http()
        .post('/auth/token')
        .set(PROXIED)
        .set('DPoP', loginProof)
        .send(credentialsOf(account));
    const pair = await expectBoundPair(await login(a), key, jwks);
    expect(tokenOutcome(await login(b))).toBe(REFUSED_AT_TOKEN_ROUTE);
    expect(tokenOutcome(await onB.login(account))).toBe(BOUND_PAIR);

    const token = pair.access_token;
    const proof = await onA.proof('GET', '/me', token);
    expect(outcome(await guarded(a, token, proof).set(PROXIED))).toBe('200');
    expect(outcome(await guarded(b, token, proof).set(PROXIED))).toBe(REFUSED_PROOF);
    expect((await onB.get('/me', token)).status).toBe(200);
  });

  it('accepts exactly one of 10 parallel requests with the same proof split between A and B', async () => {
    const account = await signUp(a);
    const key = await newDpopKey();
    const { access_token } = await expectBoundPair(
      await clientOf(a, key).login(account),
      key,
      jwks,
    );
    const proof = await clientOf(a, key).proof('GET', '/me', access_token);
    const answers = await burst(10, (i) =>
      guarded(i % 2 ? b : a, access_token, proof).set(PROXIED),
    );
    expect(tally(answers.map((res) => res.status))).toEqual({ 200: 1, 401: 9 });
  });

  it('refreshes on B, with the bound key only, a pair bound on A', async () => {
    const account = await signUp(a);
    const key = await newDpopKey();
    const pair = await expectBoundPair(await clientOf(a, key).login(account), key, jwks);
    const thief = clientOf(b, await newDpopKey());
    expect(tokenOutcome(await thief.refresh(pair.refresh_token))).toBe(REFUSED_AT_TOKEN_ROUTE);
    const next = await expectBoundPair(
      await clientOf(b, key).refresh(pair.refresh_token),
      key,
      jwks,
    );
    expect((await clientOf(a, key).get('/me', next.access_token)).status).toBe(200);
  });
});
