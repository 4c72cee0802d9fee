import {
  createHmac,
  generateKeyPairSync,
  pbkdf2,
  randomBytes,
  sign as cryptoSign,
} from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import {
  TwoFactorAuthConfigError,
  type TwoFactorJwk,
  type TwoFactorJwsAlgorithm,
} from '../../lib/index.js';
import { KeyRing } from '../../lib/core/keys/key-ring.js';
import { generateJwk } from '../support/keys.js';

const ACCESS = 'at+jwt';
const REFRESH = 'rt+jwt';

/** One 2048-bit RSA key serves every RSA algorithm (key generation is slow). */
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  format: 'jwk',
}) as Record<string, unknown>;

function rsaJwk(alg: TwoFactorJwsAlgorithm, kid: string): TwoFactorJwk {
  return { ...rsa, kty: 'RSA', kid, alg };
}

/** A fresh private JWK (or secret) for `alg`. */
function keyFor(alg: TwoFactorJwsAlgorithm, kid = `kid-${alg}`): TwoFactorJwk {
  return alg.startsWith('RS') || alg.startsWith('PS') ? rsaJwk(alg, kid) : generateJwk(alg, kid);
}

function ed448(kid: string): TwoFactorJwk {
  const { privateKey } = generateKeyPairSync('ed448');
  return { ...(privateKey.export({ format: 'jwk' }) as { kty: string }), kid, alg: 'EdDSA' };
}

/** The public half of a private JWK (what a verifier elsewhere would hold). */
function publicOnly(jwk: TwoFactorJwk): TwoFactorJwk {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete copy[member];
  return copy as TwoFactorJwk;
}

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'https://issuer.test',
    sub: 'account-1',
    iat: now,
    nbf: now,
    exp: now + 600,
    jti: 'jti-1',
    ...overrides,
  };
}

/** The start-up error `fromJwks` throws for `keys`, or fails the test when there is none. */
function startUpError(keys: unknown[]): TwoFactorAuthConfigError {
  try {
    KeyRing.fromJwks(keys as TwoFactorJwk[]);
  } catch (error) {
    expect(error).toBeInstanceOf(TwoFactorAuthConfigError);
    return error as TwoFactorAuthConfigError;
  }
  throw new Error(`KeyRing.fromJwks accepted ${JSON.stringify(keys).slice(0, 200)}`);
}

function reencode(token: string, header: Record<string, unknown>): string {
  const [, payload, signature] = token.split('.');
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.${signature}`;
}

const ALL_ALGORITHMS: TwoFactorJwsAlgorithm[] = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

describe('KeyRing.fromJwks start-up errors', () => {
  it.each([
    ['HS256', 31],
    ['HS384', 47],
    ['HS512', 63],
  ] as const)('refuses an %s secret of %i bytes (shorter than the hash)', (alg, bytes) => {
    const key = { kty: 'oct', k: randomBytes(bytes).toString('base64url'), kid: 'short', alg };
    const error = startUpError([key]);
    expect(error.option).toBe('keys[0]');
    expect(error.message).toMatch(/shorter than/);
    // One more byte, exactly the hash length, is accepted.
    const ok = { ...key, k: randomBytes(bytes + 1).toString('base64url') };
    expect(KeyRing.fromJwks([ok]).signer.kid).toBe('short');
  });

  it('refuses an HMAC key without "k"', () => {
    expect(startUpError([{ kty: 'oct', kid: 'no-k', alg: 'HS256' }]).option).toBe('keys[0]');
  });

  it.each(['RS256', 'PS256'] as const)('refuses a 1024-bit RSA key for %s', (alg) => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(privateKey.export({ format: 'jwk' }) as object), kid: 'weak', alg };
    const error = startUpError([jwk]);
    expect(error.option).toBe('keys[0]');
    expect(error.message).toMatch(/1024-bit RSA key; at least 2048/);
    // A verify-only (public) 1024-bit key is refused as well, in any position.
    const good = keyFor('ES256', 'good');
    expect(startUpError([good, publicOnly(jwk as TwoFactorJwk)]).option).toBe('keys[1]');
  });

  it.each<[string, () => Record<string, unknown>]>([
    ['an EC key for RS256', () => ({ ...generateJwk('ES256', 'x'), alg: 'RS256' })],
    ['an EC key for PS256', () => ({ ...generateJwk('ES256', 'x'), alg: 'PS256' })],
    ['an RSA key for ES256', () => ({ ...rsa, kid: 'x', alg: 'ES256' })],
    ['an RSA key for EdDSA', () => ({ ...rsa, kid: 'x', alg: 'EdDSA' })],
    ['an RSA key for HS256', () => ({ ...rsa, kid: 'x', alg: 'HS256' })],
    ['a secret for ES256', () => ({ ...generateJwk('HS512', 'x'), alg: 'ES256' })],
    ['a secret for RS256', () => ({ ...generateJwk('HS512', 'x'), alg: 'RS256' })],
    ['an Ed25519 key for HS256', () => ({ ...generateJwk('EdDSA', 'x'), alg: 'HS256' })],
    ['an Ed25519 key for ES256', () => ({ ...generateJwk('EdDSA', 'x'), alg: 'ES256' })],
    ['a P-384 key for ES256', () => ({ ...generateJwk('ES384', 'x'), alg: 'ES256' })],
    ['a P-256 key for ES384', () => ({ ...generateJwk('ES256', 'x'), alg: 'ES384' })],
    ['a P-256 key for ES512', () => ({ ...generateJwk('ES256', 'x'), alg: 'ES512' })],
  ])('refuses %s (alg not fitting the key type)', (_name, make) => {
    const error = startUpError([keyFor('HS256', 'first'), make()]);
    expect(error.option).toBe('keys[1]');
    expect(error.message).toContain('kid "x"');
  });

  it.each<[string, Record<string, unknown>]>([
    ['no alg', { kty: 'oct', k: randomBytes(32).toString('base64url'), kid: 'a' }],
    ['alg "none"', { kty: 'oct', k: randomBytes(32).toString('base64url'), kid: 'a', alg: 'none' }],
    ['alg "ES256K"', { ...generateJwk('ES256', 'a'), alg: 'ES256K' }],
    ['no kid', { kty: 'oct', k: randomBytes(32).toString('base64url'), alg: 'HS256' }],
    [
      'an empty kid',
      { kty: 'oct', k: randomBytes(32).toString('base64url'), kid: '', alg: 'HS256' },
    ],
    ['a kid with spaces', { ...generateJwk('HS256', 'a b') }],
    ['broken EC material', { ...generateJwk('ES256', 'a'), x: 'AAAA' }],
  ])('refuses a key with %s', (_name, key) => {
    expect(startUpError([key]).option).toBe('keys[0]');
  });

  it('refuses a key that is not an object', () => {
    expect(startUpError([keyFor('HS256', 'ok'), null]).option).toBe('keys[1]');
    expect(startUpError(['not a key']).option).toBe('keys[0]');
  });

  it('refuses two keys with one kid', () => {
    const error = startUpError([keyFor('ES256', 'same'), keyFor('HS256', 'same')]);
    expect(error.option).toBe('keys[1]');
    expect(error.message).toMatch(/repeats kid "same"/);
  });

  it('refuses a public-only first key (it has to sign)', () => {
    const signer = keyFor('ES256', 'public');
    expect(startUpError([publicOnly(signer)]).option).toBe('keys[0]');
    // As a later, verify-only key it is fine.
    const ring = KeyRing.fromJwks([keyFor('EdDSA', 'signer'), publicOnly(signer)]);
    expect(ring.keys.map((k) => k.kid)).toEqual(['signer', 'public']);
  });

  it.each(['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'] as const)(
    'refuses an %s key whose private part belongs to another key pair',
    (alg) => {
      const own = keyFor(alg, 'mixed') as Record<string, unknown>;
      const other = (
        alg.startsWith('RS') || alg.startsWith('PS')
          ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
          : keyFor(alg, 'other')
      ) as Record<string, unknown>;
      const privates = ['d', 'p', 'q', 'dp', 'dq', 'qi'].filter((m) => m in other);
      const mixed = { ...own };
      for (const member of privates) mixed[member] = other[member];
      const error = startUpError([mixed as TwoFactorJwk]);
      expect(error.option).toBe('keys[0]');
      expect(error.message).toMatch(/does not belong to its public part/);
      expect(error.message).not.toContain(String(other.d));
      // The key's own pair is accepted.
      expect(KeyRing.fromJwks([own as TwoFactorJwk]).signer.kid).toBe('mixed');
    },
  );

  it('refuses an empty key list with a start-up error, not a TypeError', () => {
    expect(startUpError([]).option).toBe('keys');
  });
});

describe('KeyRing sign/verify', () => {
  it.each(ALL_ALGORITHMS)('round-trips a token signed with %s', (alg) => {
    const ring = KeyRing.fromJwks([keyFor(alg, 'k1')]);
    const payload = claims({ jti: `jti-${alg}` });
    const token = ring.sign(ACCESS, payload);
    expect(decodeProtectedHeader(token)).toEqual({ alg, typ: ACCESS, kid: 'k1' });
    expect(ring.verify(token, ACCESS)).toEqual({
      header: { alg, kid: 'k1', typ: ACCESS },
      payload,
    });
    // The typ is part of what is checked: an access token is no refresh token.
    expect(ring.verify(token, REFRESH)).toBeNull();
    // A changed payload breaks the signature.
    const [h, , s] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'someone-else' })).toString(
      'base64url',
    );
    expect(ring.verify(`${h}.${forged}.${s}`, ACCESS)).toBeNull();
  });

  it.each(ALL_ALGORITHMS)(
    'hands out a signing spec for %s only where another thread can sign as the event loop would',
    (alg) => {
      const ring = KeyRing.fromJwks([keyFor(alg, 'k1')]);
      const spec = ring.signerSpec;
      expect(spec !== null).toBe(alg === 'ES256' || alg === 'EdDSA');
      if (!spec) return;
      const payload = claims();
      const input = ring.signingInput(ACCESS, payload);
      const key = spec.dsaEncoding ? { key: spec.key, dsaEncoding: spec.dsaEncoding } : spec.key;
      const token = ring.withSignature(input, cryptoSign(spec.hash, Buffer.from(input), key));
      expect(ring.verify(token, ACCESS)?.payload).toEqual(payload);
    },
  );

  it.each(ALL_ALGORITHMS)(
    'signs and verifies %s on the thread pool exactly as on the event loop',
    async (alg) => {
      const ring = KeyRing.fromJwks([keyFor(alg, 'k1')]);
      const payload = claims({ jti: `pool-${alg}` });
      const token = await ring.signOffThread(ACCESS, payload);
      expect(decodeProtectedHeader(token)).toEqual({ alg, typ: ACCESS, kid: 'k1' });
      // Each way verifies what the other signed.
      expect(ring.verify(token, ACCESS)?.payload).toEqual(payload);
      const expected = { header: { alg, kid: 'k1', typ: ACCESS }, payload };
      expect(await ring.verifyOffThread(token, ACCESS)).toEqual(expected);
      expect(await ring.verifyOffThread(ring.sign(ACCESS, payload), ACCESS)).toEqual(expected);
      // And refuses what the event-loop check refuses: another typ, a changed payload, a
      // signature cut short, a token that is no JWS at all.
      expect(await ring.verifyOffThread(token, REFRESH)).toBeNull();
      const [h, , sig] = token.split('.');
      const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'x' })).toString('base64url');
      expect(await ring.verifyOffThread(`${h}.${forged}.${sig}`, ACCESS)).toBeNull();
      expect(await ring.verifyOffThread(token.slice(0, -4), ACCESS)).toBeNull();
      expect(await ring.verifyOffThread('not.a-token', ACCESS)).toBeNull();
      expect(await ring.verifyOffThread(null as unknown as string, ACCESS)).toBeNull();
    },
  );

  it('signs ES256, EdDSA and HMAC at once, and the costly algorithms on the thread pool', async () => {
    // Keep libuv's pool (4 threads) busy: a signature sent there finishes after these jobs,
    // one made on the event loop before any of them.
    const order = async (alg: TwoFactorJwsAlgorithm): Promise<string[]> => {
      const ring = KeyRing.fromJwks([keyFor(alg, 'k1')]);
      const seen: string[] = [];
      const busy = Array.from(
        { length: 4 },
        () =>
          new Promise<void>((resolve) =>
            pbkdf2(randomBytes(8), 'salt', 150_000, 32, 'sha256', () => {
              seen.push('pool');
              resolve();
            }),
          ),
      );
      const signed = ring.signOffThread(ACCESS, claims()).then((token) => {
        seen.push('signature');
        expect(ring.verify(token, ACCESS)).not.toBeNull();
      });
      await Promise.all([...busy, signed]);
      return seen;
    };
    for (const alg of ['ES256', 'EdDSA', 'HS256'] as const) {
      expect((await order(alg))[0]).toBe('signature');
    }
    for (const alg of ['ES384', 'RS256'] as const) {
      expect((await order(alg))[0]).toBe('pool');
    }
  });

  it('round-trips with an Ed448 key', () => {
    const ring = KeyRing.fromJwks([ed448('ed448')]);
    const payload = claims();
    const token = ring.sign(REFRESH, payload);
    expect(ring.verify(token, REFRESH)?.payload).toEqual(payload);
    expect(ring.verify(token, ACCESS)).toBeNull();
  });

  it('signs with the first key and verifies with every key', () => {
    const [a, b, c] = [keyFor('ES256', 'a'), keyFor('HS384', 'b'), keyFor('PS256', 'c')];
    const ring = KeyRing.fromJwks([a, b, c]);
    expect(decodeProtectedHeader(ring.sign(ACCESS, claims())).kid).toBe('a');
    for (const key of [a, b, c]) {
      // A ring led by `key` stands for an earlier state of the key set.
      const others = [a, b, c].filter((k) => k !== key);
      const token = KeyRing.fromJwks([key, ...others]).sign(ACCESS, claims());
      expect(ring.verify(token, ACCESS)?.header.kid).toBe(key.kid);
      // Once the key is removed, its tokens no longer verify.
      expect(KeyRing.fromJwks(others).verify(token, ACCESS)).toBeNull();
    }
  });

  it('refuses a token whose kid is unknown', () => {
    const token = KeyRing.fromJwks([keyFor('HS256', 'other')]).sign(ACCESS, claims());
    const ring = KeyRing.fromJwks([keyFor('HS256', 'mine')]);
    expect(ring.verify(token, ACCESS)).toBeNull();
    // Same kid, different secret: the signature does not check out either.
    const sameKid = KeyRing.fromJwks([keyFor('HS256', 'mine')]).sign(ACCESS, claims());
    expect(ring.verify(sameKid, ACCESS)).toBeNull();
  });

  it('binds the algorithm to the key: a token cannot choose another', () => {
    const es = keyFor('ES256', 'es');
    const ring = KeyRing.fromJwks([es, keyFor('RS256', 'rs')]);
    const token = ring.sign(ACCESS, claims());
    // The same, valid signature under a header naming another algorithm.
    for (const alg of ['ES384', 'HS256', 'none', 'RS256']) {
      expect(ring.verify(reencode(token, { alg, typ: ACCESS, kid: 'es' }), ACCESS)).toBeNull();
    }
    // Classic confusion: HMAC over the input with the public key as the secret.
    const publicJwk = ring.publicJwks().keys[0];
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: ACCESS, kid: 'es' })).toString(
      'base64url',
    );
    const input = `${header}.${token.split('.')[1]}`;
    const mac = createHmac('sha256', JSON.stringify(publicJwk)).update(input).digest('base64url');
    expect(ring.verify(`${input}.${mac}`, ACCESS)).toBeNull();
    // An ES256 token naming the RSA key's kid is refused too.
    expect(ring.verify(reencode(token, { alg: 'ES256', typ: ACCESS, kid: 'rs' }), ACCESS)).toBe(
      null,
    );
    // And the untouched token still verifies (the checks above are not vacuous).
    expect(ring.verify(token, ACCESS)).not.toBeNull();
  });

  it('publishes only public halves, and nothing for HMAC secrets', () => {
    const asymmetric = ALL_ALGORITHMS.filter((a) => !a.startsWith('HS'));
    const keys = [
      keyFor('HS256', 'h'),
      ...asymmetric.map((alg) => keyFor(alg, `pub-${alg}`)),
      ed448('ed448'),
    ];
    const { keys: published } = KeyRing.fromJwks(keys).publicJwks();
    expect(published.map((k) => k.kid)).toEqual(keys.slice(1).map((k) => k.kid));
    for (const jwk of published) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) {
        expect(jwk).not.toHaveProperty(member);
      }
      expect(jwk.use).toBe('sig');
    }
    expect(KeyRing.fromJwks([keyFor('HS512', 'only')]).publicJwks()).toEqual({ keys: [] });
  });
});

describe('jose verifies what KeyRing signs', () => {
  const JOSE_ALGORITHMS: TwoFactorJwsAlgorithm[] = ALL_ALGORITHMS.filter(
    (a) => a === 'HS256' || !a.startsWith('HS'),
  );

  it.each(JOSE_ALGORITHMS)('%s', async (alg) => {
    const jwk = keyFor(alg, `jose-${alg}`);
    const ring = KeyRing.fromJwks([jwk]);
    const payload = claims({ jti: `jose-${alg}` });
    const token = ring.sign(ACCESS, payload);
    // HMAC: the shared secret; otherwise the published public JWK only.
    const verifying = alg === 'HS256' ? jwk : ring.publicJwks().keys[0];
    expect(verifying).not.toHaveProperty(alg === 'HS256' ? 'd' : 'k');
    const key = await importJWK(verifying as Parameters<typeof importJWK>[0], alg);
    const result = await jwtVerify(token, key, {
      algorithms: [alg],
      typ: ACCESS,
      issuer: 'https://issuer.test',
    });
    expect(result.payload).toEqual(payload);
    expect(result.protectedHeader).toEqual({ alg, typ: ACCESS, kid: `jose-${alg}` });
    // So does a token signed on the thread pool (what logins and refreshes hand out).
    const pooled = await ring.signOffThread(ACCESS, payload);
    expect((await jwtVerify(pooled, key, { algorithms: [alg], typ: ACCESS })).payload).toEqual(
      payload,
    );
    // jose refuses it under another key of the same algorithm, so the check is real.
    const other = KeyRing.fromJwks([generateJwk(alg, 'other')]);
    const otherKey = await importJWK(
      (alg === 'HS256' ? generateJwk('HS256', 'other') : other.publicJwks().keys[0]) as Parameters<
        typeof importJWK
      >[0],
      alg,
    );
    await expect(jwtVerify(token, otherKey, { algorithms: [alg] })).rejects.toThrow();
  });
});
