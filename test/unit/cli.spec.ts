import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../lib/cli/main.js';
import { KeyRing } from '../../lib/core/keys/key-ring.js';

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

  describe('writing key files', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'tfa-cli-write-'));
    });
    const victimText = 'not yours\n';

    it.each(['a symlink to another file', 'a world-readable file'])(
      'ignores %s planted at a predictable temp name; the key file is 0600',
      (planted) => {
        const out = join(dir, 'jwks.json');
        const trap = `${out}.${process.pid}.tmp`;
        const victim = join(dir, 'victim');
        writeFileSync(victim, victimText);
        if (planted.startsWith('a symlink')) symlinkSync(victim, trap);
        else {
          writeFileSync(trap, '');
          chmodSync(trap, 0o644);
        }
        expect(cli('keys', 'generate', '--kid', 'k', '--out', out).code).toBe(0);
        expect(readFileSync(victim, 'utf8')).toBe(victimText);
        expect(lstatSync(out).isFile()).toBe(true);
        expect(statSync(out).mode & 0o777).toBe(0o600);
        expect(JSON.parse(readFileSync(out, 'utf8')).keys[0].kid).toBe('k');
        // The planted file is left alone, and no temp file of the CLI's own is left behind.
        expect(readdirSync(dir).sort()).toEqual([
          'jwks.json',
          `jwks.json.${process.pid}.tmp`,
          'victim',
        ]);
      },
    );

    it('refuses to overwrite an existing --out file, or one that is a dangling symlink', () => {
      const out = join(dir, 'jwks.json');
      writeFileSync(out, victimText);
      const existing = cli('keys', 'generate', '--out', out);
      expect(existing.code).toBe(2);
      expect(existing.err).toMatch(/exists/);
      expect(readFileSync(out, 'utf8')).toBe(victimText);

      const link = join(dir, 'link.json');
      const target = join(dir, 'target.json');
      symlinkSync(target, link);
      const dangling = cli('keys', 'generate', '--out', link);
      expect(dangling.code).toBe(2);
      expect(dangling.err).toMatch(/exists/);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(() => statSync(target)).toThrow(/ENOENT/);
      expect(readdirSync(dir).sort()).toEqual(['jwks.json', 'link.json']);
    });

    it('refuses to rotate or retire through a symlink, leaving the real file as it was', () => {
      const real = join(dir, 'real.json');
      expect(cli('keys', 'generate', '--kid', 'one', '--out', real).code).toBe(0);
      expect(cli('keys', 'rotate', real, '--kid', 'two').code).toBe(0);
      const before = readFileSync(real, 'utf8');
      const link = join(dir, 'link.json');
      symlinkSync(real, link);
      for (const args of [
        ['keys', 'rotate', link, '--kid', 'three'],
        ['keys', 'retire', link, 'one'],
      ]) {
        const refused = cli(...args);
        expect(refused.code).toBe(2);
        expect(refused.err).toMatch(/symbolic link/);
      }
      expect(readFileSync(real, 'utf8')).toBe(before);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['link.json', 'real.json']);
    });

    it('keeps a rotated file 0600 even if its mode was loosened', () => {
      const out = join(dir, 'jwks.json');
      expect(cli('keys', 'generate', '--kid', 'one', '--out', out).code).toBe(0);
      chmodSync(out, 0o644);
      expect(cli('keys', 'rotate', out, '--kid', 'two').code).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);
    });
  });
});
