/**
 * The benchmark script still runs: `npm run bench` in its smoke mode (one 0.5 s round of every
 * section, tiny scale, no profiling) as a child process. Nothing here is timed or compared:
 * the figures of a smoke run mean nothing; only that every table comes out.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Newest modification time of the TypeScript sources the bench is compiled from. */
function newestSource(): number {
  let newest = statSync(join(ROOT, 'tsconfig.bench.json')).mtimeMs;
  for (const dir of ['lib', 'sample-app/src', 'bench']) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts')) {
        newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
      }
    }
  }
  return newest;
}

describe('npm run bench (smoke mode)', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfa-bench-smoke-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds, runs every section once and prints its tables', async () => {
    // dist/bench is not part of `npm run build`: compile lib, sample-app and bench together,
    // unless an earlier `npm run bench` already did so from the current sources.
    const script = join(ROOT, 'dist', 'bench', 'run.js');
    if (!existsSync(script) || statSync(script).mtimeMs < newestSource()) {
      const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
      const build = await run([tsc, '-p', 'tsconfig.bench.json']);
      if (!existsSync(script)) throw new Error(`tsc did not emit ${script}:\n${build.output}`);
    }

    const out = join(dir, 'BENCHMARKS.md');
    const { code, output } = await run([script, '--smoke', `--out=${out}`]);
    if (code !== 0) throw new Error(`the bench exited with ${code}:\n${output}`);

    for (const heading of [
      '## Targets',
      '## Guard cost: requests per second',
      '## Issuance under load',
      '## Micro-benchmarks',
      '## Scale',
      '## Capacity (sample app)',
      '## Many users',
      '## Memory (sample app, SQLite)',
    ]) {
      expect(output).toContain(heading);
    }
    const row = (label: string) =>
      new RegExp(`\\| ${label.replace(/[()/']/g, '\\$&')} +\\| +[\\d,]+ \\| +[\\d.]+ ms \\|`);
    expect(output).toMatch(row('JwtTwoFactorGuard ES256: unguarded GET /open'));
    expect(output).toMatch(row('JwtTwoFactorGuard ES256: guarded GET /guarded'));
    expect(output).toMatch(row('JwtTwoFactorGuard HS256: guarded GET /guarded'));
    expect(output).toMatch(row("stock AuthGuard('jwt') HS256: guarded GET /guarded"));
    expect(output).toMatch(row('JwtTwoFactorGuard ES256: DPoP-bound GET /guarded'));
    expect(output).toMatch(/DPoP-bound guarded route .+ \| +≥ 0\.60x \|/);
    // 4 of guard cost, 1 of DPoP, 2 of the login storm, 3 of capacity (logins, refreshes on
    // Express and on Fastify), plus one when the hashing limit is below the login target
    // ("machine-bound") and one when the refresh route's stack ceiling is below the refresh
    // target: smoke samples are short, so either may show.
    expect([10, 11, 12]).toContain(output.match(/\| +(PASS|FAIL) \|/g)?.length);
    expect(output).toMatch(/\| SQLite +\| +[\d.]+ \| +[\d.]+ \|/);
    expect(output).toMatch(/\| SQLite \(Fastify\) +\| +[\d.]+ \| +[\d.]+ \|/);
    expect(output).toMatch(
      /\| SQLite, refreshes +\|( +[\d,]+ \|){4} +\d+ % \| +[\d,]+ \| +[\d,]+ \|/,
    );
    // The refresh load again with 16 and 32 clients; one load per database is its capacity.
    expect(output).toMatch(/\| SQLite +\| +32 \| +[\d.]+ \| +[\d.]+ \|/);
    expect(output).toMatch(/\| SQLite \(Fastify\) +\| +16 \| +[\d.]+ \| +[\d.]+ \|/);
    expect(output.match(/\| SQLite +\| +\d+ \|.*\*\*capacity\*\* \|/g)?.length).toBe(1);
    expect(output.match(/\| SQLite \(Fastify\) +\| +\d+ \|.*\*\*capacity\*\* \|/g)?.length).toBe(1);
    expect(output).toMatch(/Cost of first sight: \*\*-?[\d.]+ µs per request/);
    expect(output).toMatch(/\| end of the rotation run +\| +[\d.]+ \| +[\d.]+ MiB \|/);
    expect(output).toMatch(/\| ES256 +\| +[\d,]+ \| +[\d,]+ \|/);
    expect(output).toMatch(/AccessTokenVerifier\.decide/);
    expect(output).toMatch(/\| scale-large +\| +1,00\d \|/);

    const report = readFileSync(out, 'utf8');
    expect(report).toContain('# Benchmarks');
    expect(report).toContain('## Machine and versions');
    expect(report).toContain('<!-- analysis:start -->');
  }, 240_000);
});
