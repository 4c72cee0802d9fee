/**
 * Option validation, per group, against the exported bounds: every numeric option accepts its
 * minimum and maximum and refuses one step outside, with its own name in the message.
 */
import { generateJwk } from '../../../test/support/keys.js';
import {
  resolveTwoFactorAuthOptions,
  TWO_FACTOR_AUTH_BOUNDS,
  TwoFactorAuthConfigError,
} from './two-factor-auth.options-validation.js';

const base = {
  issuer: 'https://issuer.test',
  keys: [generateJwk('ES256', 'k1')],
  totp: { encryptionKeys: [{ id: 't1', key: Buffer.alloc(32, 7).toString('base64') }] },
};

type Range = { min: number; max: number };
const isRange = (v: unknown): v is Range =>
  typeof v === 'object' && v !== null && 'min' in v && 'max' in v;

/** Every numeric option as [path, range], from the exported bounds. */
const numeric: [string[], Range][] = Object.entries(TWO_FACTOR_AUTH_BOUNDS).flatMap(
  ([name, value]) =>
    isRange(value)
      ? [[[name], value] as [string[], Range]]
      : Object.entries(value as Record<string, unknown>)
          .filter((entry): entry is [string, Range] => isRange(entry[1]))
          .map(([sub, range]) => [[name, sub], range] as [string[], Range]),
);

/** The base options with `path` set to `value` (and what it must stay consistent with). */
function withOption(path: string[], value: number): Record<string, unknown> {
  const options: Record<string, unknown> = { ...base };
  if (path.length === 1) {
    options[path[0]] = value;
    if (path[0] === 'accessTokenTtl')
      options.refreshTokenTtl = TWO_FACTOR_AUTH_BOUNDS.refreshTokenTtl.max;
    if (path[0] === 'refreshTokenTtl')
      options.accessTokenTtl = TWO_FACTOR_AUTH_BOUNDS.accessTokenTtl.min;
    return options;
  }
  const group = { ...((options[path[0]] as Record<string, unknown>) ?? {}), [path[1]]: value };
  if (path.join('.') === 'revocation.syncInterval') group.maxStaleness = 3_600_000;
  if (path.join('.') === 'revocation.maxStaleness') group.syncInterval = 50;
  if (path.join('.') === 'password.minLength') group.maxLength = 1024;
  if (path.join('.') === 'password.maxLength') group.minLength = 8;
  options[path[0]] = group;
  return options;
}

describe('option validation', () => {
  it('covers every numeric option group', () => {
    const groups = new Set(numeric.map(([path]) => path[0]));
    for (const group of ['lockout', 'throttle', 'revocation', 'prune', 'password', 'totp']) {
      expect(groups).toContain(group);
    }
    expect(numeric.length).toBeGreaterThan(20);
  });

  it.each(numeric.map(([path, range]) => [path.join('.'), path, range] as const))(
    '%s accepts its bounds and refuses one step outside, naming itself',
    (name, path, { min, max }) => {
      expect(() => resolveTwoFactorAuthOptions(withOption(path, min))).not.toThrow();
      expect(() => resolveTwoFactorAuthOptions(withOption(path, max))).not.toThrow();
      for (const outside of [min - 1, max + 1]) {
        const attempt = () => resolveTwoFactorAuthOptions(withOption(path, outside));
        expect(attempt).toThrow(TwoFactorAuthConfigError);
        expect(attempt).toThrow(`option "${name}" must be an integer from ${min} to ${max}`);
      }
    },
  );

  it('refuses an unknown option in a group, listing the known ones', () => {
    expect(() => resolveTwoFactorAuthOptions({ ...base, lockout: { tries: 3 } })).toThrow(
      'option "lockout.tries" is not a known option; known ones are: maxAttempts, seconds.',
    );
  });

  it('keeps the cross-option rules: refresh ≥ access, staleness > sync interval, max ≥ min', () => {
    expect(() =>
      resolveTwoFactorAuthOptions({ ...base, accessTokenTtl: 600, refreshTokenTtl: 300 }),
    ).toThrow('refreshTokenTtl');
    expect(() =>
      resolveTwoFactorAuthOptions({
        ...base,
        revocation: { syncInterval: 1000, maxStaleness: 1000 },
      }),
    ).toThrow('revocation.maxStaleness');
    expect(() =>
      resolveTwoFactorAuthOptions({ ...base, password: { minLength: 100, maxLength: 64 } }),
    ).toThrow('password.maxLength');
    expect(() =>
      resolveTwoFactorAuthOptions({ ...base, usernames: { minLength: 10, maxLength: 9 } }),
    ).toThrow('usernames.maxLength');
  });

  it('takes usernames.validate and claims as functions only, and accounts never from a factory', () => {
    expect(() =>
      resolveTwoFactorAuthOptions({ ...base, usernames: { validate: 'email' } }),
    ).toThrow('option "usernames.validate" must be a function.');
    expect(() => resolveTwoFactorAuthOptions({ ...base, claims: { roles: [] } })).toThrow(
      'option "claims" must be a function of the account.',
    );
    expect(() => resolveTwoFactorAuthOptions({ ...base, accounts: {} })).toThrow(
      'option "accounts" decides which controllers and providers exist',
    );
    const validate = (name: string) => (name.includes('@') ? null : 'must be an email');
    const claims = () => ({ roles: [] });
    expect(resolveTwoFactorAuthOptions({ ...base, usernames: { validate }, claims })).toMatchObject(
      { usernames: { minLength: 3, maxLength: 254, validate }, claims },
    );
  });

  it('fills in the defaults of every group', () => {
    const resolved = resolveTwoFactorAuthOptions({ issuer: base.issuer, keys: base.keys });
    expect(resolved).toMatchObject({
      accessTokenTtl: 900,
      refreshTokenTtl: 604800,
      lockout: { maxAttempts: 5, seconds: 900 },
      throttle: { limit: 20, ttl: 60 },
      totp: false,
      introspection: false,
      usernames: { minLength: 3, maxLength: 254 },
      claims: undefined,
    });
  });

  describe('dpop', () => {
    const refused = (dpop: unknown) => () => resolveTwoFactorAuthOptions({ ...base, dpop });

    it('defaults to optional DPoP with every asymmetric algorithm and no nonce', () => {
      expect(resolveTwoFactorAuthOptions(base).dpop).toEqual({
        required: false,
        algorithms: [
          'ES256',
          'ES384',
          'ES512',
          'EdDSA',
          'Ed25519',
          'PS256',
          'PS384',
          'PS512',
          'RS256',
          'RS384',
          'RS512',
        ],
        proofMaxAge: 60,
        nonce: false,
        nonceLifetime: 300,
        publicUrl: undefined,
      });
    });

    it('keeps a public URL as origin and path prefix, without a trailing slash', () => {
      expect(
        resolveTwoFactorAuthOptions({
          ...base,
          dpop: { publicUrl: 'HTTPS://Api.Example.com:443/v1/' },
        }).dpop.publicUrl,
      ).toBe('https://api.example.com/v1');
    });

    it.each([
      ['dpop.algorithms', { algorithms: ['HS256'] }],
      ['dpop.algorithms', { algorithms: ['none'] }],
      ['dpop.algorithms', { algorithms: [] }],
      ['dpop.required', { required: 'yes' }],
      ['dpop.nonce', { nonce: 1 }],
      ['dpop.publicUrl', { publicUrl: 'ftp://api.example.com' }],
      ['dpop.publicUrl', { publicUrl: 'https://user:secret@api.example.com' }],
      ['dpop.publicUrl', { publicUrl: 'https://api.example.com/v1?x=1' }],
      ['dpop.publicUrl', { publicUrl: '/v1' }],
      ['dpop.unknown', { unknown: true }],
    ])('refuses a bad %s', (name, dpop) => {
      expect(refused(dpop)).toThrow(TwoFactorAuthConfigError);
      expect(refused(dpop)).toThrow(name);
      expect(refused(dpop)).not.toThrow('secret');
    });
  });
});
