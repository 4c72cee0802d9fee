import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE_MAIN, spawnSampleApp } from '../support/spawned-app.js';

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
    // Decimal digits only, not whatever Number() takes.
    ['ACCESS_TOKEN_TTL', '0x100'],
    ['REFRESH_TOKEN_TTL', '1e5'],
    ['LOCKOUT_SECONDS', ' 900 '],
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

/** A recognisable secret: the output of a refused start-up must never contain it. */
const MARKER = 'Zz9MARKERsecret';

describe('sample app start-up errors never print a secret', () => {
  const validTotpKey = randomBytes(32).toString('base64');

  it.each([
    ['SECRET_KEY_PEPPER', `short-${MARKER}`],
    ['TOTP_ENCRYPTION_KEYS', `good:${validTotpKey},bad:${MARKER}`],
    ['INTROSPECTION_CLIENTS', `client:${MARKER}`],
    ['DATABASE_URL', `oracle://user:${MARKER}@db.example/app`],
    ['DATABASE_URL', `postgres://user:${MARKER}@[bad/app`],
    ['REDIS_URL', `http://:${MARKER}@cache.example:6379`],
    ['REDIS_URL', `redis://:${MARKER}@[bad:6379`],
  ])('%s: exits non-zero naming it, without its value', (name, value) => {
    const { status, output } = start({ [name]: value });
    expect(status).toBe(1);
    expect(output).toContain(name);
    expect(output).not.toContain(MARKER);
    expect(output).not.toContain(validTotpKey);
  });

  it('JWT_KEYS_FILE that is not JSON: names it, without quoting the keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-start-'));
    const file = join(dir, 'jwks.json');
    // V8 quotes the 10 characters either side of the mistake in its message.
    writeFileSync(file, `{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":${MARKER}}]}`);
    const { status, output } = start({ JWT_KEYS_FILE: file });
    expect(status).toBe(1);
    expect(output).toMatch(/JWT_KEYS_FILE .*not valid JSON/);
    expect(output).not.toContain(MARKER.slice(0, 8));
  });

  it('a database that refuses the connection: exits non-zero, the password masked', () => {
    const password = `db-${MARKER}`;
    const { status, output } = start({
      DATABASE_URL: `postgres://user:${password}@127.0.0.1:1/app`,
      SECRET_KEY_PEPPER: `pepper-${MARKER}-${MARKER}-${MARKER}`,
    });
    expect(status).toBe(1);
    expect(output).toMatch(/Cannot start: DATABASE_URL: .*ECONNREFUSED/);
    expect(output).not.toContain(MARKER);
  });
});

describe('sample app start-up failures that no option check can see', () => {
  it('a port already taken: exits non-zero and names PORT', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const { status, output } = start({ PORT: String(port) });
      expect(status).toBe(1);
      expect(output).toMatch(/Cannot start: PORT: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });
});

describe('sample app files on a fresh data folder', () => {
  it.each([
    ['the default SQLite file', undefined],
    ['a DATABASE_URL=sqlite: file', join('db', 'nested', 'app.sqlite')],
  ])('keeps %s and its folder to the owner (0600, 0700)', async (_case, sqliteFile) => {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-modes-'));
    const dataDir = join(dir, 'data');
    const database = sqliteFile ? join(dir, sqliteFile) : join(dataDir, 'sample.sqlite');
    const app = await spawnSampleApp({
      DATA_DIR: dataDir,
      ...(sqliteFile ? { DATABASE_URL: `sqlite:${database}` } : {}),
    });
    try {
      // A write, so that the WAL file exists too.
      await app
        .http()
        .post('/accounts')
        .send({ username: 'modes', password: 'correct horse battery staple' })
        .expect(201);
      const mode = (path: string) => statSync(path).mode & 0o777;
      expect(mode(dataDir)).toBe(0o700);
      expect(mode(join(database, '..'))).toBe(0o700);
      if (sqliteFile) expect(mode(join(database, '..', '..'))).toBe(0o700);
      expect(mode(database)).toBe(0o600);
      expect(existsSync(`${database}-wal`)).toBe(true);
      expect(mode(`${database}-wal`)).toBe(0o600);
      expect(mode(join(dataDir, 'dev-jwks.json'))).toBe(0o600);
    } finally {
      await app.stop();
    }
  });
});

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value));
}
