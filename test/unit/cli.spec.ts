import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../lib/cli/main.js';
import { KeyRing } from '../../lib/keys/key-ring.js';

function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = run(
    args,
    (t) => out.push(t),
    (t) => err.push(t),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('nestjs-rest-2fa keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tfa-cli-'));
  const file = join(dir, 'jwks.json');
  const read = () =>
    JSON.parse(readFileSync(file, 'utf8')) as { keys: { kid: string; alg: string; d?: string }[] };

  it.each(['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256', 'HS256', 'HS512'])(
    'generates a usable %s key set',
    (alg) => {
      const { code, out } = cli('keys', 'generate', '--alg', alg, '--kid', `k-${alg}`);
      expect(code).toBe(0);
      const set = JSON.parse(out);
      expect(set.keys).toHaveLength(1);
      expect(set.keys[0]).toMatchObject({ kid: `k-${alg}`, alg });
      const ring = KeyRing.fromJwks(set.keys);
      expect(ring.verify(ring.sign('at+jwt', { sub: 'x' }), 'at+jwt')?.payload.sub).toBe('x');
    },
  );

  it('rotates and retires in three documented steps', () => {
    expect(cli('keys', 'generate', '--alg', 'ES256', '--kid', 'first', '--out', file).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(cli('keys', 'rotate', file, '--kid', 'second').code).toBe(0);
    expect(read().keys.map((k) => k.kid)).toEqual(['second', 'first']);
    expect(read().keys[0].alg).toBe('ES256');

    // The signing key cannot be retired; the old one can.
    const refused = cli('keys', 'retire', file, 'second');
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/signing key/);
    expect(cli('keys', 'retire', file, 'first').code).toBe(0);
    expect(read().keys.map((k) => k.kid)).toEqual(['second']);
  });

  it('explains mistakes and exits with 2', () => {
    expect(cli('keys', 'generate', '--alg', 'none').err).toMatch(/Unknown --alg "none"/);
    expect(cli('keys', 'retire', file, 'nope').err).toMatch(/No key with kid "nope"/);
    expect(cli('keys', 'rotate', join(dir, 'missing.json')).err).toMatch(/does not exist/);
    expect(cli('nonsense').code).toBe(2);
    expect(cli('--help').code).toBe(0);
  });
});
