import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import semver from 'semver';

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  devDependencies: Record<string, string>;
  exports: Record<string, Record<string, string> | string>;
  files: string[];
  bin: Record<string, string>;
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    // Specs beside the code are not published (tsconfig.build.json leaves them out).
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The package an import specifier names (`@scope/name` or `name`), or null for relative/builtin. */
function packageOf(specifier: string): string | null {
  if (
    specifier.startsWith('.') ||
    specifier.startsWith('node:') ||
    builtinModules.includes(specifier)
  )
    return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every package `file` imports: `value` for imports that load it, `type` for type-only ones. */
function importsOf(file: string): { name: string; kind: 'value' | 'type' | 'dynamic' }[] {
  const text = readFileSync(file, 'utf8');
  const staticImports = [...text.matchAll(/^(import|export)( type)?[^'"]*from '([^']+)'/gm)].map(
    (m) => ({ name: packageOf(m[3]), kind: m[2] ? ('type' as const) : ('value' as const) }),
  );
  const dynamicImports = [...text.matchAll(/\bimport\('([^']+)'\)/g)].map((m) => ({
    name: packageOf(m[1]),
    kind: 'dynamic' as const,
  }));
  return [...staticImports, ...dynamicImports].filter(
    (i): i is { name: string; kind: 'value' | 'type' | 'dynamic' } => i.name !== null,
  );
}

const OPTIONAL_PEERS = ['@nestjs/event-emitter', '@nestjs/swagger', 'ioredis'];

describe('package manifest', () => {
  const imports = sources('lib').flatMap((file) => importsOf(file).map((i) => ({ ...i, file })));
  const imported = new Set(imports.map((i) => i.name));

  it('declares every package lib/ imports as a dependency or a peer', () => {
    expect(imported.size).toBeGreaterThan(5);
    const declared = new Set([
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.peerDependencies),
    ]);
    expect([...imported].filter((name) => !declared.has(name))).toEqual([]);
  });

  it('declares no peer that lib/ does not import', () => {
    // Nest's own runtime peers: compiled decorators call `Reflect.metadata`, and the guards'
    // types are those of @nestjs/common, which speak RxJS.
    const framework = ['reflect-metadata', 'rxjs'];
    expect(
      Object.keys(manifest.peerDependencies).filter(
        (name) => !imported.has(name) && !framework.includes(name),
      ),
    ).toEqual([]);
  });

  it('makes Swagger, the event emitter and ioredis optional peers, loaded only when used', () => {
    expect(
      Object.keys(manifest.peerDependenciesMeta).filter(
        (name) => manifest.peerDependenciesMeta[name].optional,
      ),
    ).toEqual(OPTIONAL_PEERS);
    for (const name of OPTIONAL_PEERS) expect(manifest.peerDependencies).toHaveProperty(name);
    // A static value import would load (and so require) the package in every application.
    const eager = imports.filter((i) => OPTIONAL_PEERS.includes(i.name) && i.kind === 'value');
    expect(eager).toEqual([]);
    // Type-only imports of an optional peer stay out of the published declarations: only the
    // file that loads the package may name its types.
    const typed = imports.filter((i) => OPTIONAL_PEERS.includes(i.name) && i.kind === 'type');
    expect(typed.map((i) => i.file)).toEqual([
      join('lib', 'http', 'common', 'swagger.decorators.ts'),
    ]);
  });

  it('depends on nothing that runs an install script (checked through package-lock.json)', () => {
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
      packages: Record<
        string,
        { dependencies?: Record<string, string>; hasInstallScript?: boolean; optional?: boolean }
      >;
    };
    const seen = new Set<string>();
    const visit = (name: string, from: string) => {
      // Node's resolution: the nearest node_modules/<name> above `from`.
      let base = from;
      for (;;) {
        const key = `${base ? `${base}/` : ''}node_modules/${name}`;
        if (lock.packages[key]) {
          if (seen.has(key)) return;
          seen.add(key);
          for (const dep of Object.keys(lock.packages[key].dependencies ?? {})) visit(dep, key);
          return;
        }
        if (!base) return;
        base = base.includes('/node_modules/')
          ? base.slice(0, base.lastIndexOf('/node_modules/'))
          : '';
      }
    };
    for (const name of Object.keys(manifest.dependencies)) visit(name, '');
    expect(seen.size).toBeGreaterThan(Object.keys(manifest.dependencies).length);
    expect([...seen].filter((key) => lock.packages[key].hasInstallScript)).toEqual([]);
  });

  it('keeps @nestjs/*, typeorm, passport, rxjs and reflect-metadata as peers, not dependencies', () => {
    for (const name of Object.keys(manifest.dependencies)) {
      expect(
        name.startsWith('@nestjs/') ||
          ['typeorm', 'passport', 'rxjs', 'reflect-metadata'].includes(name),
      ).toBe(false);
    }
    for (const name of [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/passport',
      'typeorm',
      'passport',
      'rxjs',
      'reflect-metadata',
    ]) {
      expect(manifest.peerDependencies).toHaveProperty(name);
    }
  });

  it('tests against versions inside every peer range', () => {
    for (const [name, range] of Object.entries(manifest.peerDependencies)) {
      const installed = (
        JSON.parse(readFileSync(join('node_modules', name, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      expect({ name, installed, range, ok: semver.satisfies(installed, range) }).toEqual({
        name,
        installed,
        range,
        ok: true,
      });
      expect(manifest.devDependencies).toHaveProperty(name);
    }
  });

  it('exports types, require and default, and ships only dist/, README, LICENSE and CHANGELOG', () => {
    expect(manifest.exports['.']).toEqual({
      types: './dist/lib/index.d.ts',
      require: './dist/lib/index.js',
      default: './dist/lib/index.js',
    });
    expect(manifest.files.sort()).toEqual(
      ['CHANGELOG.md', 'LICENSE', 'README.md', 'dist/lib'].sort(),
    );
    expect(manifest.bin['nestjs-rest-2fa']).toBe('dist/lib/cli/main.js');
  });
});
