import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { isAvailable } from '../support/servers.js';

const ROOT = process.cwd();
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });

/** The newest TypeScript: it compiles Nest's decorators (experimentalDecorators, metadata). */
const TYPESCRIPT_7 = '^7.0.2';
const REQUIRED_PEERS = Object.keys(manifest.peerDependencies).filter(
  (name) => !manifest.peerDependenciesMeta[name]?.optional,
);
/** Packages an application that uses none of the optional features must not get. */
const OPTIONAL_ONLY = [
  '@nestjs/swagger',
  'swagger-ui-dist',
  '@nestjs/event-emitter',
  'ioredis',
  'qrcode',
  'argon2',
];

interface FreshApp {
  /** `module` (ESM) or `commonjs`: the app's package.json `type`. */
  type: 'module' | 'commonjs';
  /** Folder under test/fixtures with the app's src/ and tsconfig.json. */
  fixture: string;
  /** Packages the app installs, at the versions this repository tests with. */
  packages: string[];
  typescript: string;
  adapters: ('express' | 'fastify')[];
  env: Record<string, string>;
  /** Only the required peers: `npm ls` must show none of OPTIONAL_ONLY. */
  minimal: boolean;
  /** The packages of the app's own choosing that have install scripts. */
  installScripts: string[];
}

const APPS: Record<string, FreshApp> = {
  // Only the required peers, the newest TypeScript, no Swagger, Redis or event emitter.
  'minimal (ESM, TypeScript 7)': {
    type: 'module',
    fixture: 'packed-app',
    packages: [...REQUIRED_PEERS, '@nestjs/platform-express', '@nestjs/platform-fastify'],
    typescript: TYPESCRIPT_7,
    adapters: ['express', 'fastify'],
    env: {},
    minimal: true,
    installScripts: ['better-sqlite3'],
  },
  // Every optional peer. @nestjs/swagger 12 accepts TypeScript up to 6.
  'everything, with Swagger (ESM, TypeScript 6)': {
    type: 'module',
    fixture: 'packed-app-full',
    packages: [
      ...Object.keys(manifest.peerDependencies),
      '@nestjs/config',
      '@nestjs/platform-express',
    ],
    typescript: manifest.devDependencies.typescript,
    adapters: ['express'],
    env: {
      JWT_ISSUER: 'https://packed-full.example',
      ...(isAvailable('redis') ? { REDIS_URL: process.env.TEST_REDIS_URL! } : {}),
    },
    minimal: false,
    // @scarf/scarf comes with swagger-ui-dist, a dependency of @nestjs/swagger.
    installScripts: ['@scarf/scarf', 'better-sqlite3'],
  },
  // The module and Nest 12 are ES modules; a CommonJS app loads them with require(esm).
  'minimal (CommonJS, TypeScript 7)': {
    type: 'commonjs',
    fixture: 'packed-app',
    packages: [...REQUIRED_PEERS, '@nestjs/platform-express', '@nestjs/platform-fastify'],
    typescript: TYPESCRIPT_7,
    adapters: ['express', 'fastify'],
    env: {},
    minimal: true,
    installScripts: ['better-sqlite3'],
  },
};

/** Starts `dist/main.js` of `app` and resolves with its URL once it listens. */
async function boot(app: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(app, 'dist/main.js')], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  }).catch((error: unknown) => {
    child.kill('SIGTERM');
    throw error;
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

/** Signs up, logs in, calls a guarded route with and without the token. */
async function logInFlow(url: string): Promise<void> {
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
}

/**
 * Packs the module once, then installs the tarball into fresh applications outside the
 * repository, one after the other (each with its own package.json, from npm's cache where it
 * can): one with only the required peers on the newest TypeScript, one with every optional
 * peer, and a CommonJS one. Each compiles with strict TypeScript (skipLibCheck off, so the
 * published declarations are checked too), boots and logs in. A missing file, export, type
 * or peer, an optional peer that became required, or an install script fails here.
 */
describe('the packed npm tarball', () => {
  const work = mkdtempSync(join(tmpdir(), 'tfa-packed-'));
  let tarball: string;

  beforeAll(() => {
    const packed = JSON.parse(
      npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT),
    ) as {
      filename: string;
      files: { path: string }[];
    }[];
    tarball = join(work, packed[0].filename);
    const shipped = packed[0].files.map((f) => f.path);
    const outsideDist = shipped.filter((path) => !path.startsWith('dist/lib/'));
    expect(outsideDist.sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    expect(shipped).toContain('dist/lib/index.d.ts');
    expect(shipped).toContain('dist/lib/cli/main.js');
    expect(shipped.some((path) => path.endsWith('.spec.js'))).toBe(false);
  }, 120_000);

  afterAll(() => {
    if (!process.env.KEEP_PACKED_APP) rmSync(work, { recursive: true, force: true });
  });

  describe.each(Object.entries(APPS))('in a fresh app: %s', (name, spec) => {
    const app = join(work, name.replace(/\W+/g, '-'));

    beforeAll(() => {
      mkdirSync(app);
      cpSync(join(ROOT, 'test/fixtures', spec.fixture), app, { recursive: true });
      const pick = (...names: string[]) =>
        Object.fromEntries(names.map((n) => [n, manifest.devDependencies[n]]));
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({
          name: 'packed-app',
          private: true,
          type: spec.type,
          dependencies: {
            'nestjs-rest-2fa': `file:${tarball}`,
            ...pick(...spec.packages, 'better-sqlite3'),
          },
          devDependencies: { typescript: spec.typescript, ...pick('@types/node') },
        }),
      );
      // Without install scripts: better-sqlite3 (the app's database driver, not the module's)
      // is copied from this checkout, where its approved script built it, instead of being
      // compiled again (a minute on Node 20). The lockfile still records who has a script.
      npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
      cpSync(
        join(ROOT, 'node_modules/better-sqlite3/build'),
        join(app, 'node_modules/better-sqlite3/build'),
        { recursive: true },
      );
      try {
        execFileSync(
          process.execPath,
          [resolve(app, 'node_modules/typescript/bin/tsc'), '-p', app],
          {
            cwd: app,
            encoding: 'utf8',
          },
        );
      } catch (error) {
        throw new Error(
          `The fresh app does not compile:\n${(error as { stdout?: string }).stdout ?? String(error)}`,
          { cause: error },
        );
      }
    }, 300_000);

    it('installs with plain npm install, and nothing of the module runs an install script', () => {
      const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { hasInstallScript?: boolean; version?: string }>;
      };
      const withScripts = Object.keys(lock.packages).filter(
        (k) => lock.packages[k].hasInstallScript,
      );
      expect(withScripts).toEqual(spec.installScripts.map((pkg) => `node_modules/${pkg}`));
      const typescript = lock.packages['node_modules/typescript'].version!;
      expect(typescript.split('.')[0]).toBe(spec.typescript === TYPESCRIPT_7 ? '7' : '6');
    });

    if (spec.minimal) {
      it('installs no optional peer, QR library or native argon2', () => {
        const installed = npm(['ls', '--all', '--parseable'], app)
          .split('\n')
          .map((path) => path.split('node_modules/').pop());
        expect(installed.filter((pkg) => OPTIONAL_ONLY.includes(pkg ?? ''))).toEqual([]);
      });
    }

    it('keeps the JSDoc in the published declarations', () => {
      const options = readFileSync(
        join(
          app,
          'node_modules/nestjs-rest-2fa/dist/lib/core/options/two-factor-auth.options.d.ts',
        ),
        'utf8',
      );
      expect(options).toMatch(/@default 900/);
      expect(options).toMatch(/Access token lifetime in seconds/);
    });

    it('ships a working CLI', () => {
      const out = execFileSync(
        join(app, 'node_modules/.bin/nestjs-rest-2fa'),
        ['keys', 'generate', '--alg', 'EdDSA'],
        { encoding: 'utf8' },
      );
      expect(JSON.parse(out).keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    });

    it.each(spec.adapters)(
      'boots on %s and runs the login flow',
      async (adapter) => {
        const running = await boot(app, { ...spec.env, ADAPTER: adapter });
        try {
          await logInFlow(running.url);
          if (spec.fixture === 'packed-app-full') {
            // Swagger decorators of the module applied, audit events delivered.
            const docs = await request(running.url).get('/docs-json').expect(200);
            expect(Object.keys(docs.body.paths)).toEqual(
              expect.arrayContaining(['/auth/token', '/auth/refresh', '/.well-known/jwks.json']),
            );
            expect(docs.body.components.schemas).toHaveProperty('TokenPairDto');
            const events = await request(running.url).get('/events').expect(200);
            expect(events.body).toEqual(
              expect.arrayContaining(['login.succeeded', 'token.issued']),
            );
          }
        } finally {
          running.stop();
        }
      },
      60_000,
    );
  });
});
