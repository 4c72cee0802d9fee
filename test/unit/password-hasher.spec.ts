import { readFileSync } from 'node:fs';
import { PasswordHasher } from '../../lib/core/passwords/password-hasher.service.js';
import type { ResolvedTwoFactorAuthOptions } from '../../lib/core/options/two-factor-auth.options.js';

/** PHC strings made once by `argon2` (node-argon2), the hasher of version 0.1. */
const fixtures = JSON.parse(readFileSync('test/fixtures/argon2-phc.json', 'utf8')) as {
  hashes: { password: string; hash: string }[];
};
const [owasp, unicode, oldParameters, argon2i] = fixtures.hashes;

const made: PasswordHasher[] = [];

function hasher(password: Partial<ResolvedTwoFactorAuthOptions['password']> = {}): PasswordHasher {
  const options = {
    password: { memoryCost: 19456, timeCost: 2, parallelism: 1, concurrency: 1, ...password },
  } as ResolvedTwoFactorAuthOptions;
  const created = new PasswordHasher(options);
  made.push(created);
  return created;
}

describe('PasswordHasher', () => {
  // The hashing threads end with the application; here, with the suite.
  afterAll(() => Promise.all(made.map((h) => h.onApplicationShutdown())));

  it('spends a full hash on a stored value that is no argon2 hash, and refuses it', async () => {
    const passwords = hasher();
    await passwords.onModuleInit();
    // What the hashing threads are asked to verify (counted, not timed: a single timing on a
    // busy machine proves nothing; test/e2e/timing.e2e-spec.ts compares answer times).
    const pool = (passwords as unknown as { pool: { verify(hash: string, p: string): unknown } })
      .pool;
    const verified: string[] = [];
    const verify = pool.verify.bind(pool);
    pool.verify = (hash: string, password: string) => {
      verified.push(hash);
      return verify(hash, password);
    };
    // A bcrypt hash (an application's legacy users), an empty column, no account at all.
    const others = ['$2b$10$abcdefghijklmnopqrstuu5a6S9D3n0oA0nQn2a2dG0fh1P0/xYp6', '', null];
    for (const other of others) expect(await passwords.verify(other, 'a password')).toBe(false);
    expect(verified).toHaveLength(others.length);
    for (const hash of verified) {
      expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    }
  });

  it('verifies every hash stored by the previous hasher (node-argon2)', async () => {
    const passwords = hasher();
    for (const { password, hash } of fixtures.hashes) {
      expect({ hash, ok: await passwords.verify(hash, password) }).toEqual({ hash, ok: true });
      expect({ hash, ok: await passwords.verify(hash, `${password}!`) }).toEqual({
        hash,
        ok: false,
      });
    }
  });

  it('needs no rehash for a node-argon2 hash made with the configured parameters', () => {
    // node-argon2 writes `m=,p=,t=`, this library `m=,t=,p=`: the order must not matter.
    expect(owasp.hash).toMatch(/\$m=19456,p=1,t=2\$/);
    expect(hasher().needsRehash(owasp.hash)).toBe(false);
    expect(hasher().needsRehash(unicode.hash)).toBe(false);
  });

  it('asks for a rehash when the parameters, the variant or the format differ', () => {
    expect(hasher().needsRehash(oldParameters.hash)).toBe(true);
    expect(
      hasher({ memoryCost: 65536, timeCost: 3, parallelism: 4 }).needsRehash(oldParameters.hash),
    ).toBe(false);
    // Same cost parameters, another variant: argon2i is rehashed to argon2id.
    expect(argon2i.hash).toMatch(/^\$argon2i\$v=19\$m=4096,p=1,t=3\$/);
    expect(hasher({ memoryCost: 4096, timeCost: 3 }).needsRehash(argon2i.hash)).toBe(true);
    expect(hasher({ timeCost: 3 }).needsRehash(owasp.hash)).toBe(true);
    expect(hasher({ memoryCost: 32768 }).needsRehash(owasp.hash)).toBe(true);
    expect(hasher({ parallelism: 2 }).needsRehash(owasp.hash)).toBe(true);
    expect(hasher().needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true);
    expect(hasher().needsRehash('')).toBe(true);
  });

  it('makes argon2id v19 PHC strings with the configured parameters, which it verifies', async () => {
    const passwords = hasher({ memoryCost: 8192, timeCost: 1 });
    const hash = await passwords.hash('correct horse battery staple');
    expect(hash).toMatch(
      /^\$argon2id\$v=19\$m=8192,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
    );
    expect(passwords.needsRehash(hash)).toBe(false);
    expect(hasher().needsRehash(hash)).toBe(true);
    await expect(passwords.verify(hash, 'correct horse battery staple')).resolves.toBe(true);
    await expect(passwords.verify(hash, 'Correct horse battery staple')).resolves.toBe(false);
  });

  it('fails without throwing on a missing or malformed hash', async () => {
    const passwords = hasher({ memoryCost: 8192, timeCost: 1 });
    await passwords.onModuleInit();
    await expect(passwords.verify(null, 'anything')).resolves.toBe(false);
    await expect(passwords.verify('not a PHC string', 'anything')).resolves.toBe(false);
  });
});
