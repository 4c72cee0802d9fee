/**
 * RFC 8725 (JWT best current practices) and the jwt_tool playbook, played against GET /me of
 * the sample app over a real socket. Every forged token below is refused with the same 401,
 * `WWW-Authenticate: Bearer error="invalid_token"` and one body that does not say which check
 * failed.
 *
 * Forgeries that need a valid signature are signed with the app's REAL key (the suite writes
 * the JWK Set itself) and get the token record the app expects (see test/support/jwt-forge.ts),
 * so each differs from an accepted token in the one property under test; the positive controls
 * prove that the unmodified forgery is accepted.
 *
 * Runs on SQLite only: the checks under attack (JWS parsing, key pinning, claims, header
 * extraction) happen before any query and do not depend on the database.
 */
import { generateKeyPairSync, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TwoFactorJwk } from '../../lib/index.js';
import { assemble, b64, hmacJws, p1363ToDer, signJws, TokenForge } from '../support/jwt-forge.js';
import { generateJwk, writeJwks } from '../support/keys.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const ISSUER = 'https://issuer.test';
const CHALLENGE = 'Bearer error="invalid_token"';
const REFUSED = {
  statusCode: 401,
  message: 'Invalid or missing access token',
  error: 'Unauthorized',
};

type Claims = Record<string, unknown>;

/** GET /me with the given Authorization header (none when undefined). */
function getMe(running: RunningApp, authorization?: string) {
  const req = running.http().get('/me');
  return authorization === undefined ? req : req.set('Authorization', authorization);
}

async function expectRefused(running: RunningApp, authorization: string | undefined) {
  const res = await getMe(running, authorization);
  expect({
    status: res.status,
    challenge: res.headers['www-authenticate'],
    body: res.body,
  }).toEqual({ status: 401, challenge: CHALLENGE, body: REFUSED });
}

async function expectAccepted(running: RunningApp, authorization: string, accountId: string) {
  const res = await getMe(running, authorization);
  expect({ status: res.status, id: res.body.id }).toEqual({ status: 200, id: accountId });
}

function without(claims: Claims, name: string): Claims {
  const copy = { ...claims };
  delete copy[name];
  return copy;
}

function publicOf(jwk: TwoFactorJwk): Record<string, unknown> {
  return createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'jwk' });
}

/** The same bytes under another spelling: flips a padding bit of the last character. */
function nonCanonical(segment: string): string | null {
  if (segment.length % 4 === 0) return null;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(segment.at(-1)!);
  const spelled = segment.slice(0, -1) + alphabet[last ^ 1];
  const same = Buffer.from(spelled, 'base64url').equals(Buffer.from(segment, 'base64url'));
  return same ? spelled : null;
}

/** Curve order of P-256: r = s = n is the other "psychic" signature. */
const P256_ORDER = Buffer.from(
  'FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551',
  'hex',
);

/**
 * Test fixture, not a secret: a self-signed P-256 certificate (CN=attacker.invalid) and its
 * private key, as an attacker would put in `x5c` / serve at `x5u`.
 */
const ATTACKER_CERT_DER_B64 =
  'MIIBjDCCATOgAwIBAgIUUPOrt8lKWLJPW1Slo4ihiMvQcOwwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQYXR0YWNrZXIuaW52YWxpZDAgFw0yNjExMjcyMTE0MzVaGA8yMTI2MTEwMzIxMTQzNVowGzEZMBcGA1UEAwwQYXR0YWNrZXIuaW52YWxpZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOv0rItoIN+3oOiDYEk8xL0BcowCWDn1sP28WL/7OaGvhtiBwCKUkRYUIBUsIvRn8i0bMszG3UlNxnzaI7wSzoujUzBRMB0GA1UdDgQWBBSrF+QghyWlFodU/UnVHOXhN+soDzAfBgNVHSMEGDAWgBSrF+QghyWlFodU/UnVHOXhN+soDzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIG76HRjk38OhSInu390X3KiQEyN3BEvmiN31QtZ3vLOPAiBCvuFv70uVWWfp/vVxGO7wUcj1Dv780PAZI9GD1FxSvw==';
const ATTACKER_CERT_JWK: TwoFactorJwk = {
  kty: 'EC',
  crv: 'P-256',
  x: '6_Ssi2gg37eg6INgSTzEvQFyjAJYOfWw_bxYv_s5oa8',
  y: 'htiBwCKUkRYUIBUsIvRn8i0bMszG3UlNxnzaI7wSzos',
  d: '9W_MYb8vS_PexYULPNWVHcqrh26snO2EzbJBcHaRiO8',
  kid: 'attacker-cert',
  alg: 'ES256',
};

describe.each(['express', 'fastify'])(
  'JWT attacks on GET /me with an ES256 key ring (SQLite, %s)',
  (adapter) => {
    let keysDir: string;
    let jwk: TwoFactorJwk;
    let suite: SuiteEnvironment;
    let running: RunningApp;
    let forge: TokenForge;
    let account: Awaited<ReturnType<typeof signUp>>;
    let other: Awaited<ReturnType<typeof signUp>>;
    let pair: { access_token: string; refresh_token: string };
    /** Claims recorded for `account`, fresh for each test. */
    let claims: Claims;

    beforeAll(async () => {
      keysDir = mkdtempSync(join(tmpdir(), 'tfa-attack-keys-'));
      jwk = generateJwk('ES256', 'attack-es256');
      suite = await createSuiteEnvironment('sqlite', {
        JWT_KEYS_FILE: writeJwks(keysDir, [jwk]),
        HTTP_ADAPTER: adapter,
      });
      running = await startSampleApp(suite.env);
      forge = new TokenForge({ running, jwk, issuer: ISSUER });
      account = await signUp(running);
      other = await signUp(running);
      pair = await logIn(running, account);
    });
    afterAll(async () => {
      await running?.close();
      await suite?.cleanup();
      rmSync(keysDir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      claims = await forge.claims(account.id);
    });

    it('accepts the controls: the issued token, and a forgery that changes nothing', async () => {
      await expectAccepted(running, `Bearer ${pair.access_token}`, account.id);
      await expectAccepted(running, `Bearer ${await forge.sign(claims)}`, account.id);
      const fresh = await forge.claims(account.id);
      const raw = forge.signSegments(b64(forge.header()), b64(fresh));
      await expectAccepted(running, `Bearer ${raw}`, account.id);
    });

    it('answers no token at all with the same 401 and challenge', async () => {
      await expectRefused(running, undefined);
    });

    describe('alg "none"', () => {
      it.each(['none', 'None', 'NONE', 'nOnE'])(
        'refuses alg %s, with and without a signature',
        async (alg) => {
          const real = (await forge.sign(claims)).split('.')[2];
          const tokens = [
            assemble({ alg, typ: 'at+jwt', kid: forge.kid }, claims, ''),
            assemble({ alg, typ: 'at+jwt', kid: forge.kid }, claims, real),
            assemble({ alg, typ: 'at+jwt', kid: forge.kid }, claims, randomBytes(64)),
            assemble({ alg, typ: 'at+jwt' }, claims, ''),
            assemble({ alg, typ: 'at+jwt' }, claims, real),
            assemble({ alg }, claims, ''),
            `${assemble({ alg, typ: 'at+jwt', kid: forge.kid }, claims, '')}`.slice(0, -1),
          ];
          for (const token of tokens) await expectRefused(running, `Bearer ${token}`);
        },
      );
    });

    describe('signature', () => {
      it('refuses a stripped signature', async () => {
        const [h, p] = (await forge.sign(claims)).split('.');
        await expectRefused(running, `Bearer ${h}.${p}.`);
      });

      it('refuses truncated signatures', async () => {
        const token = await forge.sign(claims);
        const [h, p, s] = token.split('.');
        for (const cut of [1, 2, 4, 8, 43, 85]) {
          await expectRefused(running, `Bearer ${h}.${p}.${s.slice(0, s.length - cut)}`);
        }
        const bytes = Buffer.from(s, 'base64url');
        await expectRefused(
          running,
          `Bearer ${h}.${p}.${bytes.subarray(0, 63).toString('base64url')}`,
        );
        await expectRefused(
          running,
          `Bearer ${h}.${p}.${bytes.subarray(0, 32).toString('base64url')}`,
        );
      });

      it('refuses an altered signature (each half, one bit)', async () => {
        const [h, p, s] = (await forge.sign(claims)).split('.');
        for (const index of [0, 31, 32, 63]) {
          const bytes = Buffer.from(s, 'base64url');
          bytes[index] ^= 0x01;
          await expectRefused(running, `Bearer ${h}.${p}.${bytes.toString('base64url')}`);
        }
      });

      it('refuses an altered payload or header under the original signature', async () => {
        const [h, p, s] = (await forge.sign(claims)).split('.');
        const otherPayload = b64({ ...claims, sub: other.id });
        await expectRefused(running, `Bearer ${h}.${otherPayload}.${s}`);
        const otherHeader = b64({ typ: 'at+jwt', alg: forge.alg, kid: forge.kid });
        await expectRefused(running, `Bearer ${otherHeader}.${p}.${s}`);
      });

      it("refuses another token's valid signature", async () => {
        const [h, p] = (await forge.sign(claims)).split('.');
        const donor = (await forge.sign(await forge.claims(account.id))).split('.')[2];
        await expectRefused(running, `Bearer ${h}.${p}.${donor}`);
        const issued = pair.access_token.split('.')[2];
        await expectRefused(running, `Bearer ${h}.${p}.${issued}`);
      });

      it('refuses a valid ECDSA signature re-encoded as DER', async () => {
        const [h, p, s] = (await forge.sign(claims)).split('.');
        const der = p1363ToDer(Buffer.from(s, 'base64url')).toString('base64url');
        await expectRefused(running, `Bearer ${h}.${p}.${der}`);
      });

      it('refuses "psychic" ECDSA signatures (CVE-2022-21449): r = s = 0 and r = s = n', async () => {
        const [h, p, s] = (await forge.sign(claims)).split('.');
        const real = Buffer.from(s, 'base64url');
        const zero = Buffer.alloc(32);
        const signatures = [
          Buffer.alloc(64),
          Buffer.concat([P256_ORDER, P256_ORDER]),
          Buffer.concat([zero, real.subarray(32)]),
          Buffer.concat([real.subarray(0, 32), zero]),
          Buffer.from('3006020100020100', 'hex'),
          Buffer.alloc(0),
          Buffer.alloc(1),
        ];
        for (const signature of signatures) {
          await expectRefused(running, `Bearer ${h}.${p}.${signature.toString('base64url')}`);
        }
      });
    });

    describe('algorithm confusion', () => {
      it('refuses HS256/384/512 tokens MACed with the public key (PEM, DER, JWK, JWKS, point)', async () => {
        const jwks = await running.http().get('/.well-known/jwks.json').expect(200);
        const published = jwks.body.keys[0] as Record<string, unknown>;
        expect(published.kid).toBe(forge.kid);
        const publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
        const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
        const der = publicKey.export({ type: 'spki', format: 'der' });
        const point = Buffer.concat([
          Buffer.from([4]),
          Buffer.from(String(published.x), 'base64url'),
          Buffer.from(String(published.y), 'base64url'),
        ]);
        const secrets: Buffer[] = [
          Buffer.from(pem),
          Buffer.from(pem.trim()),
          Buffer.from(pem.replace(/\n/g, '\r\n')),
          der,
          Buffer.from(JSON.stringify(published)),
          Buffer.from(JSON.stringify(publicOf(jwk))),
          Buffer.from(JSON.stringify(jwks.body)),
          point,
        ];
        const algs = [
          ['HS256', 'sha256'],
          ['HS384', 'sha384'],
          ['HS512', 'sha512'],
        ] as const;
        for (const secret of secrets) {
          for (const [alg, hash] of algs) {
            for (const header of [
              { alg, typ: 'at+jwt', kid: forge.kid },
              { alg, typ: 'at+jwt' },
            ]) {
              await expectRefused(running, `Bearer ${hmacJws(secret, header, claims, hash)}`);
            }
          }
        }
      });

      it('refuses the real key used under another algorithm name (the key pins its alg)', async () => {
        const h = (alg: string) => b64({ alg, typ: 'at+jwt', kid: forge.kid });
        const p = b64(claims);
        // Valid P-256 signatures, only over other hashes, labelled with the matching names.
        await expectRefused(
          running,
          `Bearer ${forge.signSegments(h('ES384'), p, { hash: 'sha384' })}`,
        );
        await expectRefused(
          running,
          `Bearer ${forge.signSegments(h('ES512'), p, { hash: 'sha512' })}`,
        );
        // The ES256 signature itself, under every other name.
        for (const alg of [
          'ES384',
          'ES512',
          'EdDSA',
          'RS256',
          'PS256',
          'HS256',
          'es256',
          'ES256 ',
        ]) {
          const [, , s] = forge.signSegments(h(alg), p).split('.');
          await expectRefused(running, `Bearer ${h(alg)}.${p}.${s}`);
        }
        await expectRefused(
          running,
          `Bearer ${forge.signSegments(h('ES256'), p, { hash: 'sha512' })}`,
        );
      });
    });

    describe('keys named by the token', () => {
      let attacker: TwoFactorJwk;
      let server: Server;
      let serverUrl: string;
      const fetched: string[] = [];

      beforeAll(async () => {
        attacker = generateJwk('ES256', 'attacker');
        server = createServer((req, res) => {
          fetched.push(`${req.method} ${req.url}`);
          if (req.url?.startsWith('/jwks')) {
            res.setHeader('Content-Type', 'application/json');
            res.end(JSON.stringify({ keys: [publicOf(attacker)] }));
          } else {
            res.setHeader('Content-Type', 'application/pkix-cert');
            res.end(Buffer.from(ATTACKER_CERT_DER_B64, 'base64'));
          }
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        serverUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      });
      afterAll(async () => {
        await new Promise((resolve) => server?.close(resolve));
      });

      it('refuses an embedded "jwk" header, whoever signed', async () => {
        const attackerPublic = { ...publicOf(attacker), kid: 'attacker', alg: 'ES256' };
        const tokens = [
          await signJws(attacker, { alg: 'ES256', typ: 'at+jwt', jwk: attackerPublic }, claims),
          await signJws(
            attacker,
            { alg: 'ES256', typ: 'at+jwt', kid: forge.kid, jwk: attackerPublic },
            claims,
          ),
          await signJws(
            attacker,
            { alg: 'ES256', typ: 'at+jwt', kid: 'attacker', jwk: attackerPublic },
            claims,
          ),
          await forge.sign(claims, forge.header({ jwk: publicOf(jwk) })),
        ];
        for (const token of tokens) await expectRefused(running, `Bearer ${token}`);
      });

      it('refuses jku, x5u and x5c headers and never fetches the URLs they name', async () => {
        const jku = `${serverUrl}/jwks.json`;
        const x5u = `${serverUrl}/cert.der`;
        const localhost = jku.replace('127.0.0.1', 'localhost');
        const certHeader = { alg: 'ES256', typ: 'at+jwt' };
        const tokens = [
          await signJws(attacker, { alg: 'ES256', typ: 'at+jwt', kid: 'attacker', jku }, claims),
          await signJws(attacker, { alg: 'ES256', typ: 'at+jwt', kid: forge.kid, jku }, claims),
          await signJws(attacker, { alg: 'ES256', typ: 'at+jwt', jku: localhost }, claims),
          await forge.sign(claims, forge.header({ jku })),
          await signJws(ATTACKER_CERT_JWK, { ...certHeader, kid: 'attacker-cert', x5u }, claims),
          await signJws(ATTACKER_CERT_JWK, { ...certHeader, kid: forge.kid, x5u }, claims),
          await forge.sign(claims, forge.header({ x5u })),
          await signJws(ATTACKER_CERT_JWK, { ...certHeader, x5c: [ATTACKER_CERT_DER_B64] }, claims),
          await signJws(
            ATTACKER_CERT_JWK,
            { ...certHeader, kid: forge.kid, x5c: [ATTACKER_CERT_DER_B64] },
            claims,
          ),
          await forge.sign(claims, forge.header({ x5c: [ATTACKER_CERT_DER_B64] })),
          await forge.sign(claims, forge.header({ x5t: 'AAAA', 'x5t#S256': 'AAAA' })),
        ];
        for (const token of tokens) await expectRefused(running, `Bearer ${token}`);
        // Any fetch would have been started by now; give a lazy one time to land too.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(fetched).toEqual([]);
        // The server does answer: a fetch would have been seen.
        const probe = await fetch(jku);
        expect(probe.status).toBe(200);
        expect(fetched).toEqual(['GET /jwks.json']);
        fetched.length = 0;
      });

      it('refuses kid path traversal and SQL injection, MACed with what they would yield', async () => {
        const cases: [string, string][] = [
          ['../../dev/null', ''],
          ['../../../../../../../../dev/null', ''],
          ['/dev/null', ''],
          ["' OR 1=1 --", ''],
          ["' OR 1=1 --", '1'],
          ["x' UNION SELECT 'key' --", 'key'],
          ['x|/bin/true', ''],
          ['__proto__', ''],
          ['constructor', ''],
        ];
        for (const [kid, secret] of cases) {
          for (const alg of ['HS256', 'ES256']) {
            const token = hmacJws(secret, { alg, typ: 'at+jwt', kid }, claims);
            await expectRefused(running, `Bearer ${token}`);
          }
        }
      });

      it('refuses unknown, near-miss and ill-typed kids under the real signature', async () => {
        const kids: unknown[] = [
          'attack-es256-2',
          'attack-es256 ',
          'ATTACK-ES256',
          "' OR 1=1 --",
          '../../dev/null',
          '__proto__',
          'toString',
          '',
          1,
          null,
          [forge.kid],
          { kid: forge.kid },
        ];
        for (const kid of kids) {
          await expectRefused(running, `Bearer ${await forge.sign(claims, forge.header({ kid }))}`);
        }
        const noKid = without(forge.header(), 'kid');
        await expectRefused(running, `Bearer ${await forge.sign(claims, noKid)}`);
      });
    });

    describe('header', () => {
      it.each<[string, unknown]>([
        ['JWT', 'JWT'],
        ['jwt', 'jwt'],
        ['rt+jwt (a refresh token)', 'rt+jwt'],
        ['empty', ''],
        ['null', null],
        ['a number', 1],
        ['an array', ['at+jwt']],
      ])('refuses typ %s', async (_label, typ) => {
        await expectRefused(running, `Bearer ${await forge.sign(claims, forge.header({ typ }))}`);
      });

      it('refuses a missing typ', async () => {
        const header = without(forge.header(), 'typ');
        await expectRefused(running, `Bearer ${await forge.sign(claims, header)}`);
      });

      it('refuses crit with an unknown extension, even when the signature is good', async () => {
        const tokens = [
          await forge.sign(
            claims,
            forge.header({ crit: ['urn:example:unknown'], 'urn:example:unknown': true }),
            { 'urn:example:unknown': true },
          ),
          await forge.sign(claims, forge.header({ crit: ['exp'], exp: 1 }), { exp: true }),
          forge.signSegments(b64(forge.header({ crit: [] })), b64(claims)),
          forge.signSegments(b64(forge.header({ crit: 'b64' })), b64(claims)),
          // RFC 7797 unencoded payload.
          forge.signSegments(b64(forge.header({ b64: false, crit: ['b64'] })), b64(claims)),
        ];
        for (const token of tokens) await expectRefused(running, `Bearer ${token}`);
      });

      it('refuses other header members: cty, zip, enc, x5t, a private name', async () => {
        for (const extra of [
          { cty: 'JWT' },
          { zip: 'DEF' },
          { enc: 'A256GCM' },
          { x5t: 'AAAA' },
          { 'urn:example:private': 1 },
        ]) {
          await expectRefused(running, `Bearer ${await forge.sign(claims, forge.header(extra))}`);
        }
        const proto = `{"alg":"${forge.alg}","typ":"at+jwt","kid":"${forge.kid}","__proto__":{"x":1}}`;
        await expectRefused(running, `Bearer ${forge.signSegments(b64(proto), b64(claims))}`);
      });

      it('refuses headers and payloads that are not JSON objects, under a good signature', async () => {
        const header = b64(forge.header());
        const payload = b64(claims);
        const notObjects = ['[]', 'null', '1', '"at+jwt"', 'not json', '{', '\ufeff{}'];
        for (const raw of notObjects) {
          await expectRefused(running, `Bearer ${forge.signSegments(b64(raw), payload)}`);
          await expectRefused(running, `Bearer ${forge.signSegments(header, b64(raw))}`);
        }
        const invalidUtf8 = Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url');
        await expectRefused(running, `Bearer ${forge.signSegments(invalidUtf8, payload)}`);
      });
    });

    describe('compact serialisation', () => {
      it('refuses 1, 2, 4 and 5 segments and empty segments', async () => {
        const [h, p, s] = (await forge.sign(claims)).split('.');
        const jwe = `${b64({ alg: 'dir', enc: 'A256GCM', kid: forge.kid })}..${b64('iv')}.${b64('ct')}.${b64('tag')}`;
        const tokens = [
          h,
          `${h}.${p}`,
          `${h}.${p}.${s}.${s}`,
          `${h}.${p}.${s}.`,
          `${h}.${p}.${s}.${h}.${p}`,
          `${h}.${p}.${s}..`,
          jwe,
          `.${p}.${s}`,
          `${h}..${s}`,
          `.${h}.${p}.${s}`,
          `${h}.${p}..${s}`,
          '..',
          '...',
          '.',
        ];
        for (const token of tokens) await expectRefused(running, `Bearer ${token}`);
      });

      it('refuses padding, standard-base64 characters, whitespace and non-canonical encodings', async () => {
        // Find a signature whose base64url spelling differs from standard base64.
        let token = await forge.sign(claims);
        while (!/[-_]/.test(token.split('.')[2])) token = await forge.sign(claims);
        const [h, p, s] = token.split('.');
        const std = (segment: string) => Buffer.from(segment, 'base64url').toString('base64');
        const tokens = [
          `${h}=.${p}.${s}`,
          `${h}.${p}=.${s}`,
          `${h}.${p}.${s}=`,
          `${h}.${p}.${s}==`,
          `${h}.${p}.${std(s)}`,
          `${h}.${p}.${std(s).replace(/=+$/, '')}`,
          `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`,
          `${h}.${p}.${s.slice(0, 20)} ${s.slice(20)}`,
          `${h}.${p}.${s.slice(0, 20)}%20${s.slice(20)}`,
          `${h}.${p}.${s.slice(0, 20)}*${s.slice(20)}`,
          `${h}.${p}.${s}\u00e9`,
        ];
        const spelled = [nonCanonical(h), nonCanonical(p), nonCanonical(s)];
        // An ES256 signature is 64 bytes: 86 characters with 4 spare bits, always re-spellable.
        expect(spelled[2]).not.toBeNull();
        if (spelled[0]) tokens.push(`${spelled[0]}.${p}.${s}`);
        if (spelled[1]) tokens.push(`${h}.${spelled[1]}.${s}`);
        tokens.push(`${h}.${p}.${spelled[2]}`);
        for (const candidate of tokens) await expectRefused(running, `Bearer ${candidate}`);
        // Control: the untouched spelling is accepted.
        await expectAccepted(running, `Bearer ${token}`, account.id);
      });

      it('refuses a token longer than the verifier reads', async () => {
        const [h] = (await forge.sign(claims)).split('.');
        const bloated = forge.signSegments(h, b64({ ...claims, pad: 'x'.repeat(9000) }));
        await expectRefused(running, `Bearer ${bloated}`);
      });
    });

    describe('claims (each token signed with the real key and recorded)', () => {
      const now = () => Math.floor(Date.now() / 1000);
      const cases: [string, (c: Claims) => Claims][] = [
        ...['exp', 'nbf', 'iat', 'iss', 'sub', 'jti'].map(
          (name): [string, (c: Claims) => Claims] => [`missing ${name}`, (c) => without(c, name)],
        ),
        ...['exp', 'nbf', 'iat'].flatMap((name): [string, (c: Claims) => Claims][] => [
          [`${name} as a string number`, (c) => ({ ...c, [name]: String(c[name]) })],
          // The module issues integer NumericDates and accepts only what it issued.
          [`${name} as a float`, (c) => ({ ...c, [name]: (c[name] as number) + 0.5 })],
          [`${name} negative`, (c) => ({ ...c, [name]: -(c[name] as number) })],
          [`${name} -1`, (c) => ({ ...c, [name]: -1 })],
          [`${name} in an array`, (c) => ({ ...c, [name]: [c[name]] })],
          [`${name} null`, (c) => ({ ...c, [name]: null })],
          [`${name} true`, (c) => ({ ...c, [name]: true })],
          [`${name} an object`, (c) => ({ ...c, [name]: { value: c[name] } })],
          [`${name} beyond 2^53`, (c) => ({ ...c, [name]: 2 ** 60 })],
          [`${name} exponent string`, (c) => ({ ...c, [name]: '1e10' })],
        ]),
        ['iss of another issuer', (c) => ({ ...c, iss: 'https://evil.test' })],
        ['iss in another case', (c) => ({ ...c, iss: ISSUER.toUpperCase() })],
        ['iss with a trailing slash', (c) => ({ ...c, iss: `${ISSUER}/` })],
        ['iss empty', (c) => ({ ...c, iss: '' })],
        ['iss in an array', (c) => ({ ...c, iss: [ISSUER] })],
        ['iss null', (c) => ({ ...c, iss: null })],
        ['sub a number', (c) => ({ ...c, sub: 1 })],
        ['sub in an array', (c) => ({ ...c, sub: [c.sub] })],
        ['sub null', (c) => ({ ...c, sub: null })],
        ['sub empty', (c) => ({ ...c, sub: '' })],
        ['sub in upper case', (c) => ({ ...c, sub: String(c.sub).toUpperCase() })],
        ['sub with a space', (c) => ({ ...c, sub: `${String(c.sub)} ` })],
        ['jti a number', (c) => ({ ...c, jti: 1 })],
        ['jti in an array', (c) => ({ ...c, jti: [c.jti] })],
        ['jti null', (c) => ({ ...c, jti: null })],
        ['jti empty', (c) => ({ ...c, jti: '' })],
        ['jti never issued', (c) => ({ ...c, jti: randomUUID() })],
        ['jti with SQL', (c) => ({ ...c, jti: "' OR '1'='1" })],
        ['iat in the future beyond tolerance', (c) => ({ ...c, iat: now() + 60 })],
        ['iat after exp', (c) => ({ ...c, iat: (c.exp as number) + 1 })],
        ['nbf in the future', (c) => ({ ...c, nbf: now() + 60 })],
        ['nbf after exp', (c) => ({ ...c, nbf: (c.exp as number) + 1 })],
        ['aud when none is configured', (c) => ({ ...c, aud: ISSUER })],
        ['aud an empty array', (c) => ({ ...c, aud: [] })],
        ['aud null', (c) => ({ ...c, aud: null })],
      ];

      it.each(cases)('refuses %s', async (_label, mutate) => {
        await expectRefused(running, `Bearer ${await forge.sign(mutate(claims))}`);
      });

      it("refuses a token of another account under this account's record", async () => {
        await expectRefused(running, `Bearer ${await forge.sign({ ...claims, sub: other.id })}`);
      });

      it('refuses an expired token, also just past the 5 s tolerance', async () => {
        const expired = await forge.claims(account.id, { iat: now() - 1000, lifetime: 900 });
        await expectRefused(running, `Bearer ${await forge.sign(expired)}`);
        const justPast = await forge.claims(account.id, { iat: now() - 907, lifetime: 900 });
        await expectRefused(running, `Bearer ${await forge.sign(justPast)}`);
      });

      it('accepts the tolerance controls: iat and nbf 2 s ahead, exp 2 s ago', async () => {
        const ahead = now() + 2;
        await expectAccepted(
          running,
          `Bearer ${await forge.sign({ ...claims, iat: ahead })}`,
          account.id,
        );
        const later = await forge.claims(account.id);
        await expectAccepted(
          running,
          `Bearer ${await forge.sign({ ...later, nbf: ahead })}`,
          account.id,
        );
        const recent = await forge.claims(account.id, { iat: now() - 902, lifetime: 900 });
        await expectAccepted(running, `Bearer ${await forge.sign(recent)}`, account.id);
      });
    });

    describe('token types', () => {
      it('refuses a refresh token used as an access token', async () => {
        await expectRefused(running, `Bearer ${pair.refresh_token}`);
        const refreshRecord = await forge.claims(account.id, { type: 'refresh' });
        // The access typ over a refresh record, and the refresh typ over an access record.
        await expectRefused(running, `Bearer ${await forge.sign(refreshRecord)}`);
        await expectRefused(
          running,
          `Bearer ${await forge.sign(claims, forge.header({ typ: 'rt+jwt' }))}`,
        );
      });

      it('refuses an access token used as a refresh token', async () => {
        const res = await running
          .http()
          .post('/auth/refresh')
          .send({ refresh_token: pair.access_token });
        expect(res.status).toBe(401);
        expect(res.body.access_token).toBeUndefined();
        const forged = await forge.sign(claims, forge.header({ typ: 'rt+jwt' }));
        const again = await running.http().post('/auth/refresh').send({ refresh_token: forged });
        expect(again.status).toBe(401);
        expect(again.body.access_token).toBeUndefined();
      });
    });

    describe('where the token is read from', () => {
      it('reads the token from the Authorization header only', async () => {
        const token = pair.access_token;
        const attempts = [
          running.http().get(`/me?access_token=${token}`),
          running.http().get(`/me?Authorization=Bearer%20${token}`),
          running.http().get('/me').set('Cookie', `access_token=${token}`),
          running.http().get('/me').set('Cookie', `Authorization=Bearer%20${token}; jwt=${token}`),
          running.http().get('/me').send({ access_token: token }),
          running.http().get('/me').set('X-Access-Token', token),
          running.http().get('/me').set('X-Authorization', `Bearer ${token}`),
          running.http().get('/me').set('Proxy-Authorization', `Bearer ${token}`),
          running.http().post('/me/secret-key').send({ access_token: token }),
          running.http().post('/me/secret-key').type('form').send(`access_token=${token}`),
          running.http().get(`/me?access_token=${token}`).set('Authorization', 'Bearer x.y.z'),
        ];
        for (const attempt of attempts) {
          const res = await attempt;
          // Fastify refuses a form body (JSON only) before the guard runs: 415, also a refusal.
          if (res.status === 415 && adapter === 'fastify') continue;
          expect({ status: res.status, challenge: res.headers['www-authenticate'] }).toEqual({
            status: 401,
            challenge: CHALLENGE,
          });
        }
        // The secret key was not rotated by any of them: the token still works.
        await expectAccepted(running, `Bearer ${token}`, account.id);
      });

      it('takes the scheme in any case, and one or more spaces (RFC 6750: "Bearer" 1*SP b64token)', async () => {
        for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
          await expectAccepted(running, `${scheme} ${pair.access_token}`, account.id);
        }
        await expectAccepted(running, `Bearer  ${pair.access_token}`, account.id);
        await expectAccepted(running, `Bearer     ${pair.access_token}`, account.id);
      });

      it('refuses a token with junk before or after it, or another scheme', async () => {
        const t = pair.access_token;
        const values = [
          `Bearer ${t} x`,
          `Bearer ${t},x`,
          `Bearer ${t}, Bearer ${t}`,
          `Bearer ${t} Bearer ${t}`,
          `Bearer ${t};`,
          `Bearer ${t}.`,
          `Bearer ${t}x`,
          `Bearer ${t}==`,
          `Bearer "${t}"`,
          `Bearer:${t}`,
          `Bearer: ${t}`,
          `Bearer${t}`,
          `Bearer=${t}`,
          `xBearer ${t}`,
          `Bearer Bearer ${t}`,
          `${t}`,
          `Token ${t}`,
          `JWT ${t}`,
          `Basic ${t}`,
          `Basic ${Buffer.from(`${account.username}:${account.password}`).toString('base64')}`,
          'Bearer',
          'Bearer ',
          '',
        ];
        for (const value of values) await expectRefused(running, value);
      });
    });

    it('still accepts the issued token after all of the above', async () => {
      await expectAccepted(running, `Bearer ${pair.access_token}`, account.id);
    });
  },
);

describe('JWT attacks with an RS256 key ring and an audience (SQLite)', () => {
  const AUDIENCE = 'orders-api';
  let keysDir: string;
  let jwk: TwoFactorJwk;
  let suite: SuiteEnvironment;
  let running: RunningApp;
  let forge: TokenForge;
  let account: Awaited<ReturnType<typeof signUp>>;
  let claims: Claims;

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'tfa-attack-keys-'));
    jwk = generateJwk('RS256', 'attack-rs256');
    suite = await createSuiteEnvironment('sqlite', {
      JWT_KEYS_FILE: writeJwks(keysDir, [jwk]),
      JWT_AUDIENCE: AUDIENCE,
    });
    running = await startSampleApp(suite.env);
    forge = new TokenForge({ running, jwk, issuer: ISSUER, audience: AUDIENCE });
    account = await signUp(running);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
    rmSync(keysDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    claims = await forge.claims(account.id);
  });

  it('accepts the controls: an issued token and an unmodified forgery', async () => {
    const pair = await logIn(running, account);
    await expectAccepted(running, `Bearer ${pair.access_token}`, account.id);
    await expectAccepted(running, `Bearer ${await forge.sign(claims)}`, account.id);
  });

  it('refuses HS256/384/512 MACed with the RSA public key (PEM, PKCS#1, DER, JWK, modulus)', async () => {
    const jwks = await running.http().get('/.well-known/jwks.json').expect(200);
    const published = jwks.body.keys[0] as Record<string, unknown>;
    const publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
    const secrets = [
      Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string),
      Buffer.from((publicKey.export({ type: 'spki', format: 'pem' }) as string).trim()),
      Buffer.from(publicKey.export({ type: 'pkcs1', format: 'pem' }) as string),
      publicKey.export({ type: 'spki', format: 'der' }),
      publicKey.export({ type: 'pkcs1', format: 'der' }),
      Buffer.from(JSON.stringify(published)),
      Buffer.from(JSON.stringify(jwks.body)),
      Buffer.from(String(published.n), 'base64url'),
    ];
    for (const secret of secrets) {
      for (const [alg, hash] of [
        ['HS256', 'sha256'],
        ['HS384', 'sha384'],
        ['HS512', 'sha512'],
      ] as const) {
        await expectRefused(
          running,
          `Bearer ${hmacJws(secret, { alg, typ: 'at+jwt', kid: forge.kid }, claims, hash)}`,
        );
        await expectRefused(
          running,
          `Bearer ${hmacJws(secret, { alg, typ: 'at+jwt' }, claims, hash)}`,
        );
      }
    }
  });

  it('refuses the RSA key under PS256 or RS384/RS512, and a signature by another RSA key', async () => {
    const p = b64(claims);
    const h = (alg: string) => b64({ alg, typ: 'at+jwt', kid: forge.kid });
    await expectRefused(running, `Bearer ${forge.signSegments(h('PS256'), p, { pss: true })}`);
    await expectRefused(running, `Bearer ${forge.signSegments(h('RS384'), p, { hash: 'sha384' })}`);
    await expectRefused(running, `Bearer ${forge.signSegments(h('RS512'), p, { hash: 'sha512' })}`);
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const strangerJwk = {
      ...(stranger.export({ format: 'jwk' }) as Record<string, unknown>),
      kid: forge.kid,
      alg: 'RS256',
    } as TwoFactorJwk;
    await expectRefused(running, `Bearer ${await signJws(strangerJwk, forge.header(), claims)}`);
  });

  it('refuses a missing, wrong or empty aud when an audience is configured', async () => {
    for (const aud of [undefined, 'other-api', '', [], ['other-api'], AUDIENCE.toUpperCase()]) {
      const payload = aud === undefined ? without(claims, 'aud') : { ...claims, aud };
      await expectRefused(running, `Bearer ${await forge.sign(payload)}`);
    }
  });
});

describe('expiry of an issued (and already verified) access token (SQLite)', () => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      ACCESS_TOKEN_TTL: '10',
      CLOCK_TOLERANCE: '0',
    });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('accepts the token until exp, then refuses it (also from the verified-token cache)', async () => {
    const account = await signUp(running);
    const { access_token } = await logIn(running, account);
    await expectAccepted(running, `Bearer ${access_token}`, account.id);
    const { exp } = JSON.parse(Buffer.from(access_token.split('.')[1], 'base64url').toString());
    const wait = exp * 1000 - Date.now() + 50;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    await expectRefused(running, `Bearer ${access_token}`);
  }, 20000);
});
