/**
 * `npm run bench`: guard cost, the login storm, micro-benchmarks, scale, capacity, many users
 * and memory figures, written to BENCHMARKS.md. Every server runs in its own child process in
 * production mode; autocannon runs here (the login storm in a process of its own). Variants are
 * interleaved round by round and each ratio is taken within a round. `--help` lists the flags.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MicroResults } from './micro.js';
import { capacityTargets, profileCapacity, runCapacity } from './sections/capacity.js';
import { floodRounds, floodTargets, runFlood } from './sections/flood.js';
import { runMemory } from './sections/memory.js';
import { runUsers } from './sections/users.js';
import { DpopProofPool, dpopLogin } from './support/dpop.js';
import { FixtureProcess } from './support/fixture.js';
import { hammer, type LoadResult } from './support/load.js';
import { HELP, parseOptions, type BenchOptions } from './support/options.js';
import { findProfile, summariseProfile } from './support/profile.js';
import { printSummary, writeReport } from './support/report.js';
import {
  roundRatios,
  seriesById,
  type BenchReport,
  type ScaleFixture,
  type Series,
  type Target,
} from './support/results.js';
import { seedIssuedTokens } from './support/seed.js';
import { fmtInt, fmtMs, fmtRatio, sleep } from './support/stats.js';
import { checkGuard, startTwoFactor } from './support/two-factor.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/bench/run.js → the repository root. */
const REPO = resolve(HERE, '..', '..');
const STOCK_APP = new URL('./fixtures/stock-app.js', import.meta.url);
const MICRO = new URL('./micro.js', import.meta.url);
/** RevocationView re-reads this much before its cursor (SYNC_OVERLAP_MS) every syncInterval. */
const VIEW_OVERLAP_MS = 15_000 + 2 * 500;

const log = (line: string) => console.log(line);

/** A route under load: its fixture, path and headers. */
interface Variant {
  id: string;
  label: string;
  openId?: string;
  url: string;
  headers: Record<string, string>;
  /** Headers made for each request (a fresh DPoP proof). */
  headersFor?: () => Record<string, string>;
  /** Runs before each load of this variant, given its duration (makes the proofs it uses). */
  prepare?: (duration: number) => void;
}

/** Most requests per second a variant can need proofs for: well above what 2 cores serve. */
const MAX_DPOP_RPS = 12_000;

/**
 * The DPoP-bound guarded route, and its reference: the unguarded route sent the very same
 * requests (the DPoP authorization and a fresh proof each, which it ignores), so that the
 * ratio is the guard's cost alone and not the load generator's work of sending bigger, new
 * requests. Proofs are by the key of `pool`, which `token` is bound to.
 */
function dpopRoutes(
  id: string,
  label: string,
  fixture: FixtureProcess,
  token: string,
  pool: DpopProofPool,
): Variant[] {
  const guarded = fixture.url('/guarded');
  const same = (path: string): Omit<Variant, 'id' | 'label'> => ({
    url: fixture.url(path),
    headers: { authorization: `DPoP ${token}` },
    headersFor: () => ({ dpop: pool.take(guarded, token) }),
    prepare: (duration) => pool.fill(Math.ceil(duration * MAX_DPOP_RPS), guarded, token),
  });
  return [
    {
      id: `${id}.dpop-open`,
      label: `${label}: unguarded GET /open, DPoP headers`,
      ...same('/open'),
    },
    {
      id: `${id}.dpop`,
      label: `${label}: DPoP-bound GET /guarded`,
      openId: `${id}.dpop-open`,
      ...same('/guarded'),
    },
  ];
}

async function startStock(
  execArgv: string[] = [],
): Promise<{ fixture: FixtureProcess; token: string }> {
  const fixture = await FixtureProcess.start('stock', STOCK_APP, { execArgv });
  const token = fixture.info.token as string;
  await checkGuard(fixture, token);
  return { fixture, token };
}

function routes(id: string, label: string, fixture: FixtureProcess, token: string): Variant[] {
  return [
    {
      id: `${id}.open`,
      label: `${label}: unguarded GET /open`,
      url: fixture.url('/open'),
      headers: {},
    },
    {
      id: `${id}.guarded`,
      label: `${label}: guarded GET /guarded`,
      openId: `${id}.open`,
      url: fixture.url('/guarded'),
      headers: { authorization: `Bearer ${token}` },
    },
  ];
}

/**
 * Warms every variant, then measures them round by round, rotating the order each round so
 * that no variant always runs first or last. Returns one series per variant.
 */
async function measureRounds(variants: Variant[], options: BenchOptions): Promise<Series[]> {
  const load = (v: Variant, duration: number) => {
    v.prepare?.(duration);
    return hammer(v.url, {
      connections: options.connections,
      duration,
      headers: v.headers,
      ...(v.headersFor ? { headersFor: v.headersFor } : {}),
    });
  };
  for (const v of variants) await load(v, options.warmup);
  const series: Series[] = variants.map((v) => ({
    id: v.id,
    label: v.label,
    openId: v.openId,
    runs: [],
  }));
  for (let round = 0; round < options.rounds; round++) {
    const shift = round % variants.length;
    const order = [...variants.slice(shift), ...variants.slice(0, shift)];
    const results = new Map<string, LoadResult>();
    for (const v of order) {
      await sleep(250);
      const result = await load(v, options.duration);
      results.set(v.id, result);
      log(
        `  round ${round + 1}/${options.rounds}  ${v.label.padEnd(44)} ${fmtInt(result.rps).padStart(8)} req/s  p50 ${fmtMs(result.p50)}  p99 ${fmtMs(result.p99)}`,
      );
    }
    for (const s of series) s.runs.push(results.get(s.id)!);
  }
  return series;
}

async function runMicroChild(options: BenchOptions): Promise<MicroResults> {
  const child = fork(fileURLToPath(MICRO), [], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      BENCH_MICRO_MS: String(options.microMs),
      BENCH_MICRO_REVOKED: String(options.scaleRevoked),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolvePromise, reject) => {
    let results: MicroResults | undefined;
    child.on('message', (m) => {
      results = (m as { results: MicroResults }).results;
    });
    child.on('exit', (code) =>
      results ? resolvePromise(results) : reject(new Error(`micro-benchmarks exited with ${code}`)),
    );
  });
}

async function runHttp(dir: string, options: BenchOptions, report: BenchReport): Promise<void> {
  log('\nHTTP: starting fixtures (ES256, ES256 for DPoP, HS256, stock recipe)…');
  // DPoP runs on a fixture of its own: the used proofs it remembers (about a minute's worth)
  // must not weigh on the Bearer figures.
  const [es256, dpop, hs256, stock] = await Promise.all([
    startTwoFactor('es256', dir, 'ES256'),
    startTwoFactor('es256-dpop', dir, 'ES256'),
    startTwoFactor('hs256', dir, 'HS256'),
    startStock(),
  ]);
  try {
    const pool = new DpopProofPool();
    const bound = await dpopLogin(dpop.fixture.url(''), dpop.credentials, pool);
    const variants = [
      ...routes('es256', 'JwtTwoFactorGuard ES256', es256.fixture, es256.token),
      ...dpopRoutes('es256', 'JwtTwoFactorGuard ES256', dpop.fixture, bound, pool),
      ...routes('hs256', 'JwtTwoFactorGuard HS256', hs256.fixture, hs256.token),
      ...routes('stock', "stock AuthGuard('jwt') HS256", stock.fixture, stock.token),
    ];
    log(
      `HTTP: ${options.rounds} round(s) × ${variants.length} variants × ${options.duration} s, -c ${options.connections}`,
    );
    report.http = { series: await measureRounds(variants, options) };
  } finally {
    await Promise.all([es256, dpop, hs256, stock].map((f) => f.fixture.stop()));
  }
}

async function runScale(dir: string, options: BenchOptions, report: BenchReport): Promise<void> {
  const specs = [
    { name: 'scale-small', rows: 10, revoked: 10 },
    { name: 'scale-large', rows: options.scaleRows, revoked: options.scaleRevoked },
  ];
  log(
    `\nScale: ${specs.map((s) => `${s.name} (${fmtInt(s.rows)} rows, ${fmtInt(s.revoked)} of them revoked)`).join(', ')}`,
  );
  const fixtures = await Promise.all(specs.map((s) => startTwoFactor(s.name, dir, 'ES256')));
  try {
    const before = await Promise.all(fixtures.map((f) => f.fixture.stats({ gc: true })));
    let lastRevokedAt = 0;
    const seeded = specs.map((spec, i) => {
      const { fixture, database } = fixtures[i];
      const seed = seedIssuedTokens(database, {
        accountId: fixture.info.accountId as string,
        issuer: fixture.info.issuer as string,
        kid: fixture.info.kid as string,
        rows: spec.rows - spec.revoked,
        revoked: spec.revoked,
      });
      lastRevokedAt = Math.max(lastRevokedAt, seed.lastRevokedAt);
      log(`  seeded ${spec.name}: ${fmtInt(spec.rows)} rows in ${seed.seconds.toFixed(1)} s`);
      return seed;
    });
    // The revocation view picks the revoked rows up on its next sync…
    const deadline = Date.now() + 120_000;
    for (;;) {
      const sizes = await Promise.all(fixtures.map((f) => f.fixture.stats()));
      if (sizes.every((s, i) => (s.revokedInView ?? 0) >= specs[i].revoked)) break;
      if (Date.now() > deadline)
        throw new Error('the revocation views did not load the revoked rows');
      await sleep(250);
    }
    // …and re-reads them while they are inside its sync overlap; measure after that.
    if (options.settleScale) {
      const wait = lastRevokedAt + VIEW_OVERLAP_MS + 1500 - Date.now();
      if (wait > 0) {
        log(
          `  waiting ${(wait / 1000).toFixed(1)} s for the revocation views' sync overlap to pass`,
        );
        await sleep(wait);
      }
    }
    const after = await Promise.all(fixtures.map((f) => f.fixture.stats({ gc: true })));
    if (!after[0].gcExposed)
      log('  (no --expose-gc in the fixtures: heap figures include garbage)');

    const variants = fixtures.flatMap((f, i) =>
      routes(specs[i].name, specs[i].name, f.fixture, f.token),
    );
    const series = await measureRounds(variants, options);
    report.scale = {
      fixtures: specs.map((spec, i): ScaleFixture => ({
        name: spec.name,
        rows: seeded[i].totalRows,
        revoked: spec.revoked,
        revokedInView: after[i].revokedInView ?? 0,
        seedSeconds: seeded[i].seconds,
        heapBefore: before[i].heapUsed,
        heapAfter: after[i].heapUsed,
        open: series.find((s) => s.id === `${spec.name}.open`)!,
        guarded: series.find((s) => s.id === `${spec.name}.guarded`)!,
      })),
    };
  } finally {
    await Promise.all(fixtures.map((f) => f.fixture.stop()));
  }
}

function evaluateTargets(report: BenchReport): Target[] {
  const targets: Target[] = [];
  if (report.http) {
    const stock = seriesById(report.http, 'stock.guarded');
    for (const alg of ['es256', 'hs256']) {
      const guarded = seriesById(report.http, `${alg}.guarded`);
      const open = seriesById(report.http, `${alg}.open`);
      const vsOpen = roundRatios(guarded, open).median;
      targets.push({
        id: `guard-cost-${alg}`,
        name: `${alg.toUpperCase()} guarded route (revocation on) vs the unguarded route, req/s`,
        goal: '≥ 0.85x',
        value: vsOpen,
        display: fmtRatio(vsOpen),
        pass: vsOpen >= 0.85,
      });
      const vsStock = roundRatios(guarded, stock).median;
      targets.push({
        id: `vs-stock-${alg}`,
        name: `${alg.toUpperCase()} guarded route vs the stock AuthGuard('jwt') route, req/s`,
        goal: '≥ 3x',
        value: vsStock,
        display: fmtRatio(vsStock),
        pass: vsStock >= 3,
      });
    }
  }
  if (report.http?.series.some((s) => s.id === 'es256.dpop')) {
    const bound = seriesById(report.http, 'es256.dpop');
    const vsOpen = roundRatios(bound, seriesById(report.http, 'es256.dpop-open')).median;
    targets.push({
      id: 'dpop-cost',
      name: 'DPoP-bound guarded route (a proof verified per request) vs the unguarded route sent the same requests, req/s',
      goal: '≥ 0.60x',
      value: vsOpen,
      display: fmtRatio(vsOpen),
      pass: vsOpen >= 0.6,
    });
  }
  targets.push(...floodTargets(report), ...capacityTargets(report));
  return targets;
}

/**
 * CPU profiles (`node --cpu-prof`) of the fixtures, cut to the load windows with the fixture's
 * monotonic clock, for the targets that were missed.
 */
async function runProfiles(dir: string, options: BenchOptions, report: BenchReport): Promise<void> {
  const failed = new Set(
    report.targets.filter((t) => !t.pass).map((t) => t.id.replace(/-(es|hs)256$/, '')),
  );
  const always = options.profile === 'always';
  const profileDir = (name: string) => {
    const path = join(dir, `profile-${name}`);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const windowed = async (
    fixture: FixtureProcess,
    windows: { label: string; url: string; headers: Record<string, string> }[],
  ) => {
    const marks: { label: string; from: number; to: number; requests: number }[] = [];
    for (const w of windows) {
      await hammer(w.url, {
        connections: options.connections,
        duration: options.warmup,
        headers: w.headers,
      });
    }
    for (const w of windows) {
      const from = await fixture.mark();
      const result = await hammer(w.url, {
        connections: options.connections,
        duration: options.duration,
        headers: w.headers,
      });
      const to = await fixture.mark();
      marks.push({ label: w.label, from, to, requests: result.requests });
    }
    return marks;
  };

  if (always || failed.has('guard-cost') || failed.has('vs-stock')) {
    log('\nProfiling the ES256 fixture under load (node --cpu-prof)…');
    const dirEs = profileDir('es256');
    const es = await startTwoFactor('profile-es256', dir, 'ES256', [
      '--cpu-prof',
      `--cpu-prof-dir=${dirEs}`,
    ]);
    const auth = { authorization: `Bearer ${es.token}` };
    const marks = await windowed(es.fixture, [
      { label: 'GET /open', url: es.fixture.url('/open'), headers: {} },
      { label: 'GET /guarded', url: es.fixture.url('/guarded'), headers: auth },
    ]);
    await es.fixture.stop();
    const file = findProfile(dirEs);
    report.profiles.push({
      title: `JwtTwoFactorGuard (ES256) fixture, -c ${options.connections}, ${options.duration} s per route`,
      summaries: marks.map((m) => ({
        label: m.label,
        summary: summariseProfile(file, m.requests, m.from, m.to),
      })),
      diff: { a: 'GET /guarded', b: 'GET /open' },
      unit: 'request',
    });
  }
  if (always || failed.has('vs-stock')) {
    log('Profiling the stock recipe fixture under load…');
    const dirStock = profileDir('stock');
    const stock = await startStock(['--cpu-prof', `--cpu-prof-dir=${dirStock}`]);
    const marks = await windowed(stock.fixture, [
      { label: 'GET /open', url: stock.fixture.url('/open'), headers: {} },
      {
        label: 'GET /guarded',
        url: stock.fixture.url('/guarded'),
        headers: { authorization: `Bearer ${stock.token}` },
      },
    ]);
    await stock.fixture.stop();
    const file = findProfile(dirStock);
    report.profiles.push({
      title: `stock AuthGuard('jwt') fixture, -c ${options.connections}, ${options.duration} s per route`,
      summaries: marks.map((m) => ({
        label: m.label,
        summary: summariseProfile(file, m.requests, m.from, m.to),
      })),
      diff: { a: 'GET /guarded', b: 'GET /open' },
      unit: 'request',
    });
  }
  if (always || failed.has('flood-p99') || failed.has('flood-throughput')) {
    log('Profiling the login flood (node --cpu-prof)…');
    const dirFlood = profileDir('flood');
    const target = await startTwoFactor('profile-flood', dir, 'ES256', [
      '--cpu-prof',
      `--cpu-prof-dir=${dirFlood}`,
    ]);
    const windows: Record<string, { from: number; to: number }> = {};
    const rounds = await floodRounds(target, options, 1, async (phase, edge) => {
      const at = await target.fixture.mark();
      windows[phase] = { ...windows[phase], [edge === 'start' ? 'from' : 'to']: at } as {
        from: number;
        to: number;
      };
    });
    await target.fixture.stop();
    const file = findProfile(dirFlood);
    const [round] = rounds;
    report.profiles.push({
      title: `login flood (${options.floodConnections} connections on POST /auth/token), main thread, per login`,
      summaries: [
        {
          label: 'flood window',
          summary: summariseProfile(
            file,
            (round.logins.rps * (windows.busy.to - windows.busy.from)) / 1e6,
            windows.busy.from,
            windows.busy.to,
          ),
        },
      ],
      unit: 'login',
    });

    // Does hashing one password at a time keep the guarded route faster on this machine?
    log('Diagnostic: the same storm with password.concurrency = 1 (one hash at a time)…');
    const single = await startTwoFactor('flood-one-hash', dir, 'ES256', [], {
      BENCH_PASSWORD_CONCURRENCY: '1',
    });
    try {
      const r = (await floodRounds(single, options, 1))[0];
      report.diagnostics.push({
        title: 'Login storm with password.concurrency = 1 (one hash at a time)',
        lines: [
          `guarded ${fmtInt(r.idleThroughput.rps)} → ${fmtInt(r.busyThroughput.rps)} req/s (${fmtRatio(r.busyThroughput.rps / r.idleThroughput.rps)}); probe p99 idle ${fmtMs(r.idle.p99)}, during the storm ${fmtMs(r.busy.p99)}; ${fmtInt(r.logins.rps)} logins/s; event-loop delay p99 idle ${fmtMs(r.idleLoopDelayP99)}, storm ${fmtMs(r.busyLoopDelayP99)}`,
        ],
      });
    } finally {
      await single.fixture.stop();
    }
  }
  const capacityLogins = failed.has('capacity-logins') || failed.has('capacity-hashing');
  const capacityRefreshes = failed.has('capacity-refreshes');
  if (report.capacity && (always || capacityLogins || capacityRefreshes)) {
    log('Profiling the sample app under the capacity loads (node --cpu-prof)…');
    report.profiles.push(
      ...(await profileCapacity(dir, options, {
        logins: always || capacityLogins,
        refreshes: always || capacityRefreshes,
      })),
    );
  }
}

function commandLine(args: readonly string[]): string {
  if (process.env.npm_lifecycle_event === 'bench') {
    return `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  }
  return `node dist/bench/run.js${args.length ? ` ${args.join(' ')}` : ''}`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const parsed = parseOptions(args, process.env, join(REPO, 'BENCHMARKS.md'));
  if (parsed === 'help') {
    log(HELP);
    return;
  }
  const options = parsed;
  const dir = mkdtempSync(join(tmpdir(), 'tfa-bench-'));
  const report: BenchReport = {
    startedAt: new Date(),
    command: commandLine(args),
    mode: options.mode,
    rounds: options.rounds,
    duration: options.duration,
    connections: options.connections,
    loadBefore: loadavg(),
    targets: [],
    profiles: [],
    diagnostics: [],
  };
  log(
    `nestjs-rest-2fa benchmarks (${options.mode}): ${options.rounds} round(s) of ${options.duration} s, -c ${options.connections}; temp ${dir}`,
  );
  try {
    const timed = async (name: string, section: () => Promise<void>) => {
      const t0 = Date.now();
      await section();
      log(`  (${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    };
    if (options.sections.includes('micro')) {
      log('\nMicro-benchmarks…');
      await timed('micro-benchmarks', async () => {
        report.micro = await runMicroChild(options);
      });
    }
    if (options.sections.includes('http')) await timed('HTTP', () => runHttp(dir, options, report));
    if (options.sections.includes('flood')) {
      await timed('login storm', () => runFlood(dir, options, report));
    }
    if (options.sections.includes('scale'))
      await timed('scale', () => runScale(dir, options, report));
    if (options.sections.includes('capacity')) {
      await timed('capacity', () => runCapacity(dir, options, report));
    }
    if (options.sections.includes('users')) {
      await timed('many users', () => runUsers(dir, options, report));
    }
    if (options.sections.includes('memory')) {
      await timed('memory', () => runMemory(dir, options, report));
    }
    report.targets = evaluateTargets(report);
    if (
      options.profile === 'always' ||
      (options.profile === 'auto' && report.targets.some((t) => !t.pass))
    ) {
      await runProfiles(dir, options, report);
    }
    report.finishedAt = new Date();
    report.loadAfter = loadavg();
    writeReport(report, options.out, REPO);
    printSummary(report, options.out, REPO);
  } finally {
    if (options.keepTemp) log(`Kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
