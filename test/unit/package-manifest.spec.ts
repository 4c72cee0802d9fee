import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import semver from 'semver';

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
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

describe('package manifest', () => {
  const imported = new Set(
    sources('lib').flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)]
        .map((m) => packageOf(m[1]))
        .filter((name): name is string => name !== null),
    ),
  );

  it('declares every package lib/ imports as a dependency or a peer', () => {
    expect(imported.size).toBeGreaterThan(5);
    const declared = new Set([
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.peerDependencies),
    ]);
    expect([...imported].filter((name) => !declared.has(name))).toEqual([]);
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
