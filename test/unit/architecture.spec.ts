/**
 * The house rules of lib/ (docs/ARCHITECTURE.md), checked on the import graph: imports point
 * down only (wiring → http → flows → core), the core knows no HTTP, and no module imports
 * itself back through others.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const LIB = 'lib';
const LAYERS = ['core', 'flows', 'http'] as const;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.spec.ts') ? [path] : [];
  });
}

/** 0 core, 1 flows, 2 http, 3 the wiring (root files, cli). */
function layerOf(file: string): number {
  const top = relative(LIB, file).split('/')[0];
  const index = LAYERS.indexOf(top as (typeof LAYERS)[number]);
  return index === -1 ? LAYERS.length : index;
}

interface Import {
  from: string;
  specifier: string;
  target: string | null;
  typeOnly: boolean;
}

const IMPORT = /^(?:import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm;

const files = sources(LIB);
const imports: Import[] = files.flatMap((from) =>
  [...readFileSync(from, 'utf8').matchAll(IMPORT)].map((m) => {
    const specifier = m[2];
    const target = specifier.startsWith('.')
      ? normalize(join(dirname(from), specifier)).replace(/\.js$/, '.ts')
      : null;
    return { from, specifier, target, typeOnly: m[1] !== undefined };
  }),
);

describe('lib/ architecture', () => {
  it('has files in each layer, and every relative import resolves to one of them', () => {
    for (const layer of LAYERS) {
      expect(files.some((f) => relative(LIB, f).startsWith(`${layer}/`))).toBe(true);
    }
    const missing = imports.filter((i) => i.target && !files.includes(i.target));
    expect(missing.map((i) => `${i.from} → ${i.specifier}`)).toEqual([]);
  });

  it('imports only point down: wiring → http → flows → core', () => {
    const upward = imports.filter((i) => i.target && layerOf(i.target) > layerOf(i.from));
    expect(upward.map((i) => `${i.from} → ${i.target}`)).toEqual([]);
  });

  it('keeps HTTP out of the core and the flows', () => {
    const HTTP_PACKAGES =
      /^(@nestjs\/(passport|swagger|throttler|platform-.*)|passport.*|express|fastify)$/;
    const HTTP_NAMES =
      /\b(\w*Exception|HttpStatus|ExecutionContext|Controller|UseGuards|UseFilters|Req|Res|Body|Headers)\b/;
    const offenders = files
      .filter((f) => layerOf(f) <= 1)
      .flatMap((f) =>
        [...readFileSync(f, 'utf8').matchAll(/^import\s+([^;]*?)\s+from\s+'([^']+)'/gm)]
          .filter(
            ([, names, pkg]) =>
              HTTP_PACKAGES.test(pkg) || (pkg === '@nestjs/common' && HTTP_NAMES.test(names)),
          )
          .map(([statement]) => `${f}: ${statement.replace(/\s+/g, ' ')}`),
      );
    expect(offenders).toEqual([]);
  });

  it('has no import cycles', () => {
    const graph = new Map<string, string[]>();
    for (const i of imports) {
      if (!i.target || i.typeOnly) continue;
      graph.set(i.from, [...(graph.get(i.from) ?? []), i.target]);
    }
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') {
          cycles.push([...path.slice(path.indexOf(next)), next].join(' → '));
        } else if (!state.has(next)) {
          visit(next, [...path, next]);
        }
      }
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file, [file]);
    expect(cycles).toEqual([]);
  });

  it('exports the public API from lib/index.ts only, and nothing internal', () => {
    const index = readFileSync(join(LIB, 'index.ts'), 'utf8');
    for (const internal of [
      'RESOLVED_OPTIONS',
      'REDIS_CLIENT',
      'AccessTokenVerifier',
      'RevocationView',
      'KeyRing',
      'TokenIssuer',
      'TokenRevoker',
      'TokenPruner',
      'LockoutService',
    ]) {
      expect(index).not.toMatch(new RegExp(`\\b${internal}\\b`));
    }
  });
});
