import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE_MAIN } from '../support/spawned-app.js';

/** Runs the built sample app with `env`; it is expected to refuse to start. */
function start(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'tfa-start-'));
  const result = spawnSync(process.execPath, [SAMPLE_MAIN], {
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', DATA_DIR: dir, PORT: '0', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('sample app start-up checks', () => {
  it.each([
    ['PORT', 'not-a-port'],
    ['ACCESS_TOKEN_TTL', '-5'],
    ['DATABASE_URL', 'oracle://somewhere'],
    ['LOCKOUT_MAX_ATTEMPTS', 'many'],
    ['THROTTLE_TTL', '1.5'],
    ['REDIS_URL', 'http://localhost'],
    ['HTTP_ADAPTER', 'koa'],
    ['TOTP_ENCRYPTION_KEYS', 'k:short'],
    ['REVOCATION_SYNC_INTERVAL', '10'],
    ['PASSWORD_CONCURRENCY', '0'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', '0.0.0.0/0'],
  ])('stops on a malformed %s and names it', (name, value) => {
    const { status, output } = start({ [name]: value });
    expect(status).toBe(1);
    expect(output).toContain(name);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('refuses to start in production without JWT_KEYS_FILE, and says why', () => {
    const { status, output } = start({ NODE_ENV: 'production' });
    expect(status).toBe(1);
    expect(output).toMatch(/JWT_KEYS_FILE is required with NODE_ENV=production/);
  });

  it('refuses a key file with a weak key, naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-start-'));
    const file = join(dir, 'jwks.json');
    writeJson(file, {
      keys: [{ kty: 'oct', k: Buffer.alloc(16).toString('base64url'), kid: 'short', alg: 'HS256' }],
    });
    const { status, output } = start({ JWT_KEYS_FILE: file });
    expect(status).toBe(1);
    expect(output).toMatch(/keys\[0\].*short.*32 bytes/);
  });

  it('refuses TOTP_ENABLED=true without an encryption key in production', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-start-'));
    const file = join(dir, 'jwks.json');
    writeJson(file, {
      keys: [{ kty: 'oct', k: Buffer.alloc(32, 1).toString('base64url'), kid: 'k', alg: 'HS256' }],
    });
    const { status, output } = start({
      NODE_ENV: 'production',
      JWT_KEYS_FILE: file,
      TOTP_ENABLED: 'true',
    });
    expect(status).toBe(1);
    expect(output).toMatch(/TOTP_ENCRYPTION_KEYS/);
  });
});

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value));
}
