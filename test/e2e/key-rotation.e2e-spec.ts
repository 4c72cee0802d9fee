import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';
import { generateJwk, writeJwks } from '../support/keys.js';
import { databases } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const ISSUER = 'https://issuer.test';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

// First in the file: a refused start leaves Nest's pending TypeORM connection to finish on
// its own, so it gets an in-memory database and the rest of the file's run time to do so.
describe('start-up with a bad JWT_KEYS_FILE', () => {
  let suite: SuiteEnvironment;
  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite');
  });
  afterAll(async () => {
    await suite?.cleanup();
  });

  const rsa1024 = () => ({
    ...(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      format: 'jwk',
    }) as object),
    kid: 'weak-rsa',
    alg: 'RS256',
  });

  it.each<[string, () => Record<string, unknown>, RegExp]>([
    [
      'an HS256 secret shorter than 32 bytes',
      () => ({ kty: 'oct', k: randomBytes(16).toString('base64url'), kid: 'short', alg: 'HS256' }),
      /keys\[0\].*shorter than 32 bytes/s,
    ],
    ['a 1024-bit RSA key', rsa1024, /keys\[0\].*1024-bit RSA key/s],
    [
      'an EC key labelled RS256',
      () => ({ ...generateJwk('ES256', 'mislabelled'), alg: 'RS256' }),
      /keys\[0\].*kty "EC", but RS256 needs a RSA key/s,
    ],
  ])('refuses to start with %s', async (_name, make, message) => {
    const file = writeJwks(suite.dir, [make() as TwoFactorJwk], `bad-${Date.now()}.json`);
    await expect(
      startSampleApp({ ...suite.env, DATABASE_URL: 'sqlite::memory:', JWT_KEYS_FILE: file }),
    ).rejects.toThrow(message);
  });
});

describe.each(databases())('signing keys and rotation on %s', (kind) => {
  let suite: SuiteEnvironment;
  let running: RunningApp | undefined;
  let files = 0;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind);
  });
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });
  afterAll(async () => {
    await suite?.cleanup();
  });

  /** (Re)starts the sample app on the suite's database with a new JWT_KEYS_FILE. */
  async function restartWith(keys: TwoFactorJwk[]): Promise<RunningApp> {
    await running?.close();
    running = undefined;
    const file = writeJwks(suite.dir, keys, `jwks-${++files}.json`);
    running = await startSampleApp({ ...suite.env, JWT_KEYS_FILE: file });
    return running;
  }

  async function me(app: RunningApp, token: string): Promise<number> {
    return (await app.http().get('/me').set('Authorization', `Bearer ${token}`)).status;
  }

  async function refresh(app: RunningApp, token: string) {
    return app.http().post('/auth/refresh').send({ refresh_token: token });
  }

  async function publishedKids(app: RunningApp): Promise<string[]> {
    const res = await app.http().get('/.well-known/jwks.json').expect(200);
    return res.body.keys.map((k: { kid: string }) => k.kid);
  }

  it('rotation across a restart on one database file', async () => {
    const oldKey = generateJwk('ES256', 'old-es256');
    const newKey = generateJwk('EdDSA', 'new-eddsa');

    // Before: one key.
    let app = await restartWith([oldKey]);
    const account = await signUp(app);
    const a = await logIn(app, account);
    const b = await logIn(app, account);
    expect(decodeProtectedHeader(a.access_token)).toMatchObject({ alg: 'ES256', kid: 'old-es256' });
    expect(await me(app, a.access_token)).toBe(200);

    // Rotation: the new key goes first and signs; the old one still verifies.
    app = await restartWith([newKey, oldKey]);
    expect(await publishedKids(app)).toEqual(['new-eddsa', 'old-es256']);
    expect(await me(app, a.access_token)).toBe(200);
    expect(await me(app, b.access_token)).toBe(200);
    const c = await logIn(app, account);
    expect(decodeProtectedHeader(c.access_token)).toMatchObject({ alg: 'EdDSA', kid: 'new-eddsa' });
    expect(decodeProtectedHeader(c.refresh_token)).toMatchObject({ kid: 'new-eddsa' });
    expect(await me(app, c.access_token)).toBe(200);
    // An old-key refresh token is exchanged for a new-key pair.
    const renewed = (await refresh(app, a.refresh_token).then((r) => r.body)) as typeof a;
    expect(decodeProtectedHeader(renewed.access_token).kid).toBe('new-eddsa');
    expect(decodeProtectedHeader(renewed.refresh_token).kid).toBe('new-eddsa');
    expect(await me(app, renewed.access_token)).toBe(200);

    // The old key is removed: its tokens stop working, the new key's keep working.
    app = await restartWith([newKey]);
    expect(await publishedKids(app)).toEqual(['new-eddsa']);
    expect(await me(app, a.access_token)).toBe(401);
    expect(await me(app, b.access_token)).toBe(401);
    await refresh(app, b.refresh_token).then((r) => expect(r.status).toBe(401));
    expect(await me(app, c.access_token)).toBe(200);
    expect(await me(app, renewed.access_token)).toBe(200);
    await refresh(app, renewed.refresh_token).then((r) => expect(r.status).toBe(200));
    await refresh(app, c.refresh_token).then((r) => expect(r.status).toBe(200));
    expect(await me(app, (await logIn(app, account)).access_token)).toBe(200);
  });

  it.each<TwoFactorJwsAlgorithm>(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'])(
    'publishes a JWKS of public halves that verifies %s tokens with jose',
    async (alg) => {
      const signer = generateJwk(alg, `sig-${alg}`);
      const hmac = generateJwk('HS512', 'hmac-verify-only');
      const retired = generateJwk('ES256', 'es-verify-only');
      const app = await restartWith([signer, hmac, retired]);

      const res = await app.http().get('/.well-known/jwks.json').expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const cacheControl = String(res.headers['cache-control']);
      expect(cacheControl).toMatch(/\bpublic\b/);
      expect(Number(/max-age=(\d+)/.exec(cacheControl)?.[1])).toBeGreaterThan(0);
      const jwks = res.body as { keys: Record<string, unknown>[] };
      expect(jwks.keys.map((k) => k.kid)).toEqual([`sig-${alg}`, 'es-verify-only']);
      for (const key of jwks.keys) {
        for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
      }
      // Not one secret value appears anywhere in the document.
      const text = res.text;
      for (const jwk of [signer, hmac, retired]) {
        for (const member of PRIVATE_MEMBERS) {
          if (typeof jwk[member] === 'string') expect(text).not.toContain(jwk[member]);
        }
      }

      const account = await signUp(app);
      const pair = await logIn(app, account);
      const keySet = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
      const access = await jwtVerify(pair.access_token, keySet, {
        issuer: ISSUER,
        typ: 'at+jwt',
        algorithms: [alg],
      });
      expect(access.protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: `sig-${alg}` });
      expect(access.payload.sub).toBe(account.id);
      const refreshed = await jwtVerify(pair.refresh_token, keySet, {
        issuer: ISSUER,
        typ: 'rt+jwt',
        algorithms: [alg],
      });
      expect(refreshed.payload.sub).toBe(account.id);
      // Without the signer's entry the set does not verify the token: the check is real.
      const others = createLocalJWKSet({
        keys: jwks.keys.filter((k) => k.kid !== `sig-${alg}`),
      } as Parameters<typeof createLocalJWKSet>[0]);
      await expect(jwtVerify(pair.access_token, others)).rejects.toThrow();
      expect(await me(app, pair.access_token)).toBe(200);
    },
  );

  it('publishes an empty JWKS for an HMAC-only ring, whose tokens work', async () => {
    const app = await restartWith([generateJwk('HS256', 'hs-only'), generateJwk('HS384', 'hs2')]);
    const res = await app.http().get('/.well-known/jwks.json').expect(200);
    expect(res.body).toEqual({ keys: [] });
    const pair = await logIn(app, await signUp(app));
    expect(decodeProtectedHeader(pair.access_token)).toMatchObject({
      alg: 'HS256',
      kid: 'hs-only',
    });
    expect(await me(app, pair.access_token)).toBe(200);
  });

  it('refuses a token with an unknown kid or an algorithm other than its key’s', async () => {
    const es = generateJwk('ES256', 'ring-es');
    const hs = generateJwk('HS256', 'ring-hs');
    const app = await restartWith([es, hs]);
    const pair = await logIn(app, await signUp(app));
    const payload = payloadOf(pair.access_token);
    const sign = async (jwk: Record<string, unknown>, header: { alg: string; kid?: string }) =>
      new SignJWT(payload)
        .setProtectedHeader({ ...header, typ: 'at+jwt' })
        .sign(await importJWK(jwk as Parameters<typeof importJWK>[0], header.alg));
    const hmac = (header: object, secret: Buffer) => {
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${pair.access_token.split('.')[1]}`;
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    const foreign = generateJwk('ES256', 'ring-es');

    // Control: the same claims, signed again outside the app with the ring's own key, pass.
    const resigned = await sign(es, { alg: 'ES256', kid: 'ring-es' });
    expect(resigned).not.toBe(pair.access_token);
    expect(await me(app, resigned)).toBe(200);

    const refused = [
      // A key the ring does not hold, under a kid it does not know and under one it knows.
      await sign(foreign, { alg: 'ES256', kid: 'stranger' }),
      await sign(foreign, { alg: 'ES256', kid: 'ring-es' }),
      // The right signature for the right key, but naming the other key of the ring.
      await sign(es, { alg: 'ES256', kid: 'ring-hs' }),
      // An HMAC made with a secret of the ring, presented under the ES256 key's kid.
      hmac(
        { alg: 'HS256', typ: 'at+jwt', kid: 'ring-es' },
        Buffer.from(hs.k as string, 'base64url'),
      ),
      // No kid at all, and alg "none".
      await sign(es, { alg: 'ES256' }),
      `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: 'ring-es' })).toString('base64url')}.${pair.access_token.split('.')[1]}.`,
    ];
    for (const token of refused) {
      const res = await app.http().get('/me').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
    expect(await me(app, pair.access_token)).toBe(200);
  });
});
