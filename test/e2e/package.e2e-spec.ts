import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';

const ROOT = process.cwd();
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });

/**
 * Packs the module, installs the tarball into a fresh application outside the repository (its
 * own package.json), compiles that application with strict TypeScript, boots it on Express and
 * on Fastify and logs in. A missing file, export, type or peer dependency fails here.
 */
describe('the packed npm tarball', () => {
  const app = mkdtempSync(join(tmpdir(), 'tfa-packed-'));
  let tarball: string;

  beforeAll(() => {
    const packed = JSON.parse(
      npm(['pack', '--json', '--ignore-scripts', '--pack-destination', app], ROOT),
    ) as {
      filename: string;
      files: { path: string }[];
    }[];
    tarball = join(app, packed[0].filename);
    const shipped = packed[0].files.map((f) => f.path);
    const outsideDist = shipped.filter((path) => !path.startsWith('dist/lib/'));
    expect(outsideDist.sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    expect(shipped).toContain('dist/lib/index.d.ts');
    expect(shipped).toContain('dist/lib/cli/main.js');
    expect(shipped.some((path) => path.endsWith('.spec.js'))).toBe(false);

    cpSync(join(ROOT, 'test/fixtures/packed-app'), app, { recursive: true });
    const pick = (...names: string[]) =>
      Object.fromEntries(names.map((n) => [n, manifest.devDependencies[n]]));
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'packed-app',
        private: true,
        type: 'module',
        dependencies: {
          'nestjs-rest-2fa': `file:${tarball}`,
          ...pick(
            ...Object.keys(manifest.peerDependencies).filter((n) => n !== '@nestjs/event-emitter'),
          ),
          ...pick('@nestjs/platform-express', '@nestjs/platform-fastify', 'better-sqlite3'),
        },
        devDependencies: pick('typescript', '@types/node'),
      }),
    );
    // Offline from npm's cache, without install scripts: the native addons (better-sqlite3,
    // argon2), built here by their approved install scripts, are copied from this checkout
    // instead of being compiled again (a minute on Node 20).
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
    for (const addon of ['better-sqlite3', 'argon2']) {
      cpSync(
        join(ROOT, 'node_modules', addon, 'build'),
        join(app, 'node_modules', addon, 'build'),
        {
          recursive: true,
        },
      );
    }
    try {
      execFileSync(process.execPath, [resolve(app, 'node_modules/typescript/bin/tsc'), '-p', app], {
        cwd: app,
        encoding: 'utf8',
      });
    } catch (error) {
      throw new Error(
        `The fresh app does not compile:\n${(error as { stdout?: string }).stdout ?? String(error)}`,
        { cause: error },
      );
    }
  }, 240_000);

  afterAll(() => {
    if (!process.env.KEEP_PACKED_APP) rmSync(app, { recursive: true, force: true });
  });

  it('keeps the JSDoc in the published declarations', () => {
    const options = readFileSync(
      join(app, 'node_modules/nestjs-rest-2fa/dist/lib/two-factor-auth.options.d.ts'),
      'utf8',
    );
    expect(options).toMatch(/@default 900/);
    expect(options).toMatch(/Access token lifetime in seconds/);
  });

  it('ships a working CLI', () => {
    const out = execFileSync(
      join(app, 'node_modules/.bin/nestjs-rest-2fa'),
      ['keys', 'generate', '--alg', 'EdDSA'],
      {
        encoding: 'utf8',
      },
    );
    expect(JSON.parse(out).keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
  });

  it.each(['express', 'fastify'])(
    'boots on %s and runs the login flow',
    async (adapter) => {
      const child = spawn(process.execPath, [join(app, 'dist/main.js')], {
        cwd: app,
        env: { PATH: process.env.PATH ?? '', ADAPTER: adapter },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let output = '';
        const url = await new Promise<string>((resolveUrl, reject) => {
          const timer = setTimeout(() => reject(new Error(`did not start:\n${output}`)), 30_000);
          const read = (chunk: Buffer) => {
            output += chunk.toString();
            const match = /LISTENING (\S+)/.exec(output);
            if (match) {
              clearTimeout(timer);
              resolveUrl(match[1].replace('[::1]', '127.0.0.1'));
            }
          };
          child.stdout.on('data', read);
          child.stderr.on('data', read);
          child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
        });
        const http = () => request(url);
        const account = { username: 'packed-user', password: 'correct horse battery staple' };
        const created = await http().post('/signup').send(account).expect(201);
        const login = await http()
          .post('/auth/token')
          .send({ ...account, secretKey: created.body.secretKey })
          .expect(200);
        const me = await http()
          .get('/whoami')
          .set('Authorization', `Bearer ${login.body.access_token}`)
          .expect(200);
        expect(me.body).toEqual({ id: created.body.id, username: 'packed-user' });
        await http().get('/whoami').expect(401);
      } finally {
        child.kill('SIGTERM');
      }
    },
    60_000,
  );
});
