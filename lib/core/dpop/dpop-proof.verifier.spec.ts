import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import * as DPoP from 'dpop';
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type JWK,
} from 'jose';
import { generateJwk } from '../../../test/support/keys.js';
import { DpopNonceRequiredError, InvalidDpopProofError } from '../errors.js';
import { KeyRing } from '../keys/key-ring.js';
import { resolveTwoFactorAuthOptions } from '../options/two-factor-auth.options-validation.js';
import type { TwoFactorDpopOptions } from '../options/two-factor-auth.options.js';
import { jwkThumbprint } from './dpop-key.js';
import { DpopProofVerifier } from './dpop-proof.verifier.js';
import { DpopReplayStore } from './dpop-replay.store.js';
import { normaliseHtu } from './htu.util.js';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
type Key = KeyPair['privateKey'];

const URL_ME = 'https://api.example.com/me';

function verifier(dpop: TwoFactorDpopOptions = {}): DpopProofVerifier {
  const keys = [generateJwk('ES256', 'k1')];
  const options = resolveTwoFactorAuthOptions({ issuer: 'https://issuer.test', keys, dpop });
  return new DpopProofVerifier(options, KeyRing.fromJwks(keys), new DpopReplayStore(options, null));
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

/** A proof written by hand with jose, for what the `dpop` client refuses to make. */
async function handMade(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: Key | Uint8Array,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
}

describe('DpopProofVerifier', () => {
  let pair: KeyPair;
  let publicJwk: JWK;
  let jkt: string;
  const claims = () => ({
    jti: randomUUID(),
    htm: 'GET',
    htu: URL_ME,
    iat: Math.floor(Date.now() / 1000),
  });

  beforeAll(async () => {
    pair = (await generateKeyPair('ES256', { extractable: true })) as KeyPair;
    publicJwk = await exportJWK(pair.publicKey);
    jkt = await DPoP.calculateThumbprint(pair.publicKey);
  });

  it('accepts a proof made by the dpop client and answers its RFC 7638 thumbprint', async () => {
    for (const alg of ['ES256', 'Ed25519', 'PS256', 'RS256'] as const) {
      const keys = await DPoP.generateKeyPair(alg);
      const proof = await DPoP.generateProof(keys, URL_ME, 'GET', undefined, 'the-token');
      const answer = await verifier().verify(proof, {
        method: 'GET',
        url: URL_ME,
        accessToken: 'the-token',
      });
      expect({ alg, answer }).toEqual({
        alg,
        answer: await DPoP.calculateThumbprint(keys.publicKey),
      });
    }
  });

  it('accepts an EdDSA (Ed25519) proof made with jose', async () => {
    const ed = (await generateKeyPair('EdDSA', { extractable: true })) as KeyPair;
    const edJwk = await exportJWK(ed.publicKey);
    const proof = await handMade(
      { typ: 'dpop+jwt', alg: 'EdDSA', jwk: edJwk },
      claims(),
      ed.privateKey,
    );
    expect(await verifier().verify(proof, { method: 'GET', url: URL_ME })).toBe(
      await calculateJwkThumbprint(edJwk, 'sha256'),
    );
  });

  it('computes the thumbprint of RFC 7638 §3.1', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    expect(jwkThumbprint({ e: 'AQAB', kty: 'RSA', n })).toBe(
      'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
    );
  });

  it('accepts each proof once', async () => {
    const dpop = verifier();
    const proof = await handMade(
      { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk },
      claims(),
      pair.privateKey,
    );
    const target = { method: 'GET', url: URL_ME };
    expect(await refusal(dpop.verify(proof, target))).toBe('accepted');
    expect(await refusal(dpop.verify(proof, target))).toBe(InvalidDpopProofError.name);
  });

  it('accepts exactly one of a burst of the same proof', async () => {
    const dpop = verifier();
    const proof = await handMade(
      { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk },
      claims(),
      pair.privateKey,
    );
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => refusal(dpop.verify(proof, { method: 'GET', url: URL_ME }))),
    );
    expect(answers.filter((a) => a === 'accepted')).toHaveLength(1);
  });

  describe('refuses', () => {
    const header = () => ({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk });
    const cases: [
      string,
      () => Promise<string>,
      Partial<{ method: string; url: string; accessToken: string; jkt: string }>?,
    ][] = [
      [
        'another htm',
        async () => handMade(header(), { ...claims(), htm: 'POST' }, pair.privateKey),
      ],
      [
        'a lower-case htm',
        async () => handMade(header(), { ...claims(), htm: 'get' }, pair.privateKey),
      ],
      [
        'another htu path',
        async () =>
          handMade(header(), { ...claims(), htu: 'https://api.example.com/you' }, pair.privateKey),
      ],
      [
        'another htu host',
        async () =>
          handMade(header(), { ...claims(), htu: 'https://evil.example.com/me' }, pair.privateKey),
      ],
      [
        'another htu scheme',
        async () =>
          handMade(header(), { ...claims(), htu: 'http://api.example.com/me' }, pair.privateKey),
      ],
      [
        'a stale iat',
        async () =>
          handMade(
            header(),
            { ...claims(), iat: Math.floor(Date.now() / 1000) - 61 },
            pair.privateKey,
          ),
      ],
      [
        'a future iat',
        async () =>
          handMade(
            header(),
            { ...claims(), iat: Math.floor(Date.now() / 1000) + 30 },
            pair.privateKey,
          ),
      ],
      [
        'a string iat',
        async () =>
          handMade(
            header(),
            { ...claims(), iat: String(Math.floor(Date.now() / 1000)) },
            pair.privateKey,
          ),
      ],
      ['no jti', async () => handMade(header(), { ...claims(), jti: undefined }, pair.privateKey)],
      ['typ JWT', async () => handMade({ ...header(), typ: 'JWT' }, claims(), pair.privateKey)],
      ['no typ', async () => handMade({ alg: 'ES256', jwk: publicJwk }, claims(), pair.privateKey)],
      [
        'a crit header',
        async () => handMade({ ...header(), crit: ['b64'], b64: true }, claims(), pair.privateKey),
      ],
      [
        'no jwk',
        async () => handMade({ typ: 'dpop+jwt', alg: 'ES256' }, claims(), pair.privateKey),
      ],
      [
        'alg HS256',
        async () => {
          const secret = new Uint8Array(32).fill(7);
          return handMade(
            { typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: base64url.encode(secret) } },
            claims(),
            secret,
          );
        },
      ],
      [
        'alg none',
        async () => {
          const encode = (value: unknown) =>
            Buffer.from(JSON.stringify(value)).toString('base64url');
          return `${encode({ typ: 'dpop+jwt', alg: 'none', jwk: publicJwk })}.${encode(claims())}.`;
        },
      ],
      [
        'a private key in the header',
        async () => {
          const full = await exportJWK(pair.privateKey);
          return handMade({ ...header(), jwk: full }, claims(), pair.privateKey);
        },
      ],
      [
        'a key of another curve than alg',
        async () => {
          const p384 = (await generateKeyPair('ES384', { extractable: true })) as KeyPair;
          return handMade(
            { ...header(), alg: 'ES256', jwk: await exportJWK(p384.publicKey) },
            claims(),
            pair.privateKey,
          );
        },
      ],
      [
        'a header key that did not sign',
        async () => {
          const other = (await generateKeyPair('ES256', { extractable: true })) as KeyPair;
          return handMade(
            { ...header(), jwk: await exportJWK(other.publicKey) },
            claims(),
            pair.privateKey,
          );
        },
      ],
      [
        'a 1024-bit RSA key',
        async () => {
          // jose will not sign with so short a key: signed here with node:crypto.
          const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
          const encode = (value: unknown) =>
            Buffer.from(JSON.stringify(value)).toString('base64url');
          const jwk = publicKey.export({ format: 'jwk' });
          const input = `${encode({ typ: 'dpop+jwt', alg: 'RS256', jwk })}.${encode(claims())}`;
          return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
        },
      ],
      [
        'an RSA key whose exponent is not 65537',
        async () => {
          const { privateKey, publicKey } = generateKeyPairSync('rsa', {
            modulusLength: 2048,
            publicExponent: 3,
          });
          const encode = (value: unknown) =>
            Buffer.from(JSON.stringify(value)).toString('base64url');
          const jwk = publicKey.export({ format: 'jwk' });
          const input = `${encode({ typ: 'dpop+jwt', alg: 'RS256', jwk })}.${encode(claims())}`;
          return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
        },
      ],
      [
        'a missing ath',
        async () => handMade(header(), claims(), pair.privateKey),
        { accessToken: 'token' },
      ],
      [
        'a wrong ath',
        async () =>
          handMade(
            header(),
            { ...claims(), ath: createHash('sha256').update('other').digest('base64url') },
            pair.privateKey,
          ),
        { accessToken: 'token' },
      ],
      [
        'a key other than the bound one',
        async () => handMade(header(), claims(), pair.privateKey),
        { jkt: 'A'.repeat(43) },
      ],
      ['garbage', async () => 'not.a.proof'],
      [
        'two proofs in one header',
        async () => {
          const one = await handMade(header(), claims(), pair.privateKey);
          return `${one}, ${one}`;
        },
      ],
    ];
    it.each(cases)('%s', async (_name, make, target = {}) => {
      const proof = await make();
      expect(
        await refusal(verifier().verify(proof, { method: 'GET', url: URL_ME, ...target })),
      ).toBe(InvalidDpopProofError.name);
    });

    it('a proof that is not a string', async () => {
      for (const proof of [undefined, null, ['a', 'b'], 42]) {
        expect(await refusal(verifier().verify(proof, { method: 'GET', url: URL_ME }))).toBe(
          InvalidDpopProofError.name,
        );
      }
    });

    it('an algorithm left out of dpop.algorithms', async () => {
      const proof = await handMade(header(), claims(), pair.privateKey);
      const only = verifier({ algorithms: ['EdDSA'] });
      expect(only.algs).toBe('EdDSA');
      expect(await refusal(only.verify(proof, { method: 'GET', url: URL_ME }))).toBe(
        InvalidDpopProofError.name,
      );
    });
  });

  it('accepts the bound key, ath and htu spelled differently but equal (RFC 3986 normalisation)', async () => {
    const token = 'header.payload.signature';
    const ath = createHash('sha256').update(token).digest('base64url');
    const proof = await handMade(
      { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk },
      { ...claims(), ath, htu: 'HTTPS://API.example.com:443/a/../%6De?query#fragment' },
      pair.privateKey,
    );
    expect(
      await verifier().verify(proof, { method: 'GET', url: URL_ME, accessToken: token, jkt }),
    ).toBe(jkt);
  });

  it('refuses a request whose own URL is none, even with a proof naming the same string', async () => {
    for (const url of ['http://[:::]/me', 'http://localhost:99999/me']) {
      const proof = await handMade(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk },
        { ...claims(), htu: url },
        pair.privateKey,
      );
      expect(await refusal(verifier().verify(proof, { method: 'GET', url }))).toBe(
        InvalidDpopProofError.name,
      );
    }
  });

  describe('with nonces', () => {
    it('asks for a nonce, then accepts the one it gave', async () => {
      const dpop = verifier({ nonce: true });
      const keys = await DPoP.generateKeyPair('ES256');
      let nonce: string | undefined;
      try {
        await dpop.verify(await DPoP.generateProof(keys, URL_ME, 'GET'), {
          method: 'GET',
          url: URL_ME,
        });
      } catch (error) {
        expect(error).toBeInstanceOf(DpopNonceRequiredError);
        nonce = (error as DpopNonceRequiredError).nonce;
      }
      expect(nonce).toMatch(/^[A-Za-z0-9_-]{27}$/);
      const proof = await DPoP.generateProof(keys, URL_ME, 'GET', nonce);
      expect(await dpop.verify(proof, { method: 'GET', url: URL_ME })).toBe(
        await DPoP.calculateThumbprint(keys.publicKey),
      );
      const forged = `${nonce!.slice(0, 10)}${nonce![10] === 'A' ? 'B' : 'A'}${nonce!.slice(11)}`;
      expect(
        await refusal(
          dpop.verify(await DPoP.generateProof(keys, URL_ME, 'GET', forged), {
            method: 'GET',
            url: URL_ME,
          }),
        ),
      ).toBe(DpopNonceRequiredError.name);
    });
  });
});

describe('normaliseHtu', () => {
  it.each([
    ['https://Example.COM/a/b', 'https://example.com/a/b'],
    ['https://example.com:443/a', 'https://example.com/a'],
    ['http://example.com:80', 'http://example.com/'],
    ['http://example.com:8080/x/./y/../z', 'http://example.com:8080/x/z'],
    ['https://example.com/%7euser/%2f', 'https://example.com/~user/%2F'],
    ['https://example.com/p?q=1#f', 'https://example.com/p'],
  ])('%s → %s', (value, expected) => {
    expect(normaliseHtu(value)).toBe(expected);
  });

  it.each(['/relative', 'ftp://example.com/', 'https://user:pw@example.com/', 'not a url'])(
    'refuses %s',
    (value) => {
      expect(normaliseHtu(value)).toBeNull();
    },
  );
});
