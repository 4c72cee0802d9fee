import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type as osType, arch } from 'node:os';
import { join } from 'node:path';
import { microTables } from '../micro.js';
import { isGuardFrame, top, type ProfileSummary } from './profile.js';
import { medianOf, roundRatios, type BenchReport, type Series } from './results.js';
import { fmtBytes, fmtInt, fmtMs, fmtNum, fmtRatio, median, table } from './stats.js';

const ANALYSIS_START = '<!-- analysis:start -->';
const ANALYSIS_END = '<!-- analysis:end -->';

const PACKAGES = [
  '@nestjs/core',
  '@nestjs/platform-express',
  'express',
  '@nestjs/passport',
  'passport',
  'passport-jwt',
  'jsonwebtoken',
  'typeorm',
  'better-sqlite3',
  '@node-rs/argon2',
  'autocannon',
];

function packageVersion(repo: string, name: string): string {
  try {
    const file = join(repo, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function gitRevision(repo: string): string {
  try {
    const run = (args: string[]) =>
      execFileSync('git', args, {
        cwd: repo,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const head = run(['rev-parse', '--short', 'HEAD']);
    const dirty = run(['status', '--porcelain', '--untracked-files=no']) !== '';
    return `${head}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

function machine(repo: string): string {
  const cores = cpus();
  const own = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string })
    .version;
  const rows: string[][] = [
    ['CPU', `${cores[0]?.model ?? 'unknown'} × ${cores.length}`],
    ['Memory', fmtBytes(totalmem())],
    ['OS', `${osType()} ${release()} ${arch()}`],
    ['Node.js', process.version],
    ['nestjs-rest-2fa', `${own}, git ${gitRevision(repo)}`],
    ...PACKAGES.map((name) => [name, packageVersion(repo, name)]),
  ];
  return table(['', ''], rows);
}

function loadLine(values: number[] | undefined): string {
  return values ? values.map((v) => v.toFixed(2)).join(' / ') : 'n/a';
}

function httpSection(report: BenchReport): string {
  const http = report.http!;
  const byId = new Map(http.series.map((s) => [s.id, s]));
  const ratio = (s: Series) =>
    s.openId ? fmtRatio(roundRatios(s, byId.get(s.openId)!).median) : '1.00x (reference)';
  const stock = byId.get('stock.guarded');
  const main = table(
    ['route', 'req/s', 'p50', 'p99', 'vs unguarded (same round)', 'vs stock guarded'],
    http.series.map((s) => [
      s.label,
      fmtInt(medianOf(s, 'rps')),
      fmtMs(medianOf(s, 'p50')),
      fmtMs(medianOf(s, 'p99')),
      ratio(s),
      s.openId && stock ? fmtRatio(roundRatios(s, stock).median) : '',
    ]),
  );
  const rounds = http.series[0]?.runs.length ?? 0;
  const perRound = table(
    ['route', ...Array.from({ length: rounds }, (_, i) => `round ${i + 1} req/s`)],
    http.series.map((s) => [s.label, ...s.runs.map((r) => fmtInt(r.rps))]),
  );
  const overhead = http.series
    .filter((s) => s.openId)
    .map((s) => {
      const open = byId.get(s.openId!)!;
      const us = (1 / medianOf(s, 'rps') - 1 / medianOf(open, 'rps')) * 1e6;
      return `- ${s.label}: ${fmtNum(us, 1)} µs more per request than its unguarded route (from the median req/s; machine-wide, server and load generator together).`;
    });
  return [
    '## Guard cost: requests per second',
    '',
    `autocannon -c ${report.connections}, ${report.rounds} interleaved round(s) of ${report.duration} s per route, medians over rounds. Each ratio is taken within a round, against the route of the same process, then the median is reported.`,
    '',
    main,
    '',
    'Per round:',
    '',
    perRound,
    '',
    ...overhead,
  ].join('\n');
}

function floodSection(report: BenchReport): string {
  const flood = report.flood!;
  const m = (f: (r: (typeof flood.rounds)[number]) => number) => median(flood.rounds.map(f));
  const rows = [
    [
      'guarded p50 (probe)',
      fmtMs(m((r) => r.idle.p50)),
      fmtMs(m((r) => r.busy.p50)),
      fmtRatio(m((r) => r.busy.p50 / r.idle.p50)),
    ],
    [
      'guarded p99 (probe)',
      fmtMs(m((r) => r.idle.p99)),
      fmtMs(m((r) => r.busy.p99)),
      fmtRatio(m((r) => r.busy.p99 / r.idle.p99)),
    ],
    ['guarded max (probe)', fmtMs(m((r) => r.idle.max)), fmtMs(m((r) => r.busy.max)), ''],
    [
      'event-loop delay p99 (server)',
      fmtMs(m((r) => r.idleLoopDelayP99)),
      fmtMs(m((r) => r.busyLoopDelayP99)),
      '',
    ],
    [
      'logins/s (2xx)',
      '',
      fmtNum(
        m((r) => r.logins.rps),
        1,
      ),
      '',
    ],
    [
      'login p50 / p99',
      '',
      `${fmtMs(m((r) => r.logins.p50))} / ${fmtMs(m((r) => r.logins.p99))}`,
      '',
    ],
  ];
  const perRound = table(
    ['round', 'p99 idle', 'p99 flood', 'ratio', 'logins/s'],
    flood.rounds.map((r, i) => [
      String(i + 1),
      fmtMs(r.idle.p99),
      fmtMs(r.busy.p99),
      fmtRatio(r.busy.p99 / r.idle.p99),
      fmtNum(r.logins.rps, 1),
    ]),
  );
  return [
    '## Issuance under load',
    '',
    `${flood.floodConnections} autocannon connections POST valid logins to /auth/token (throttle 1,000,000/min, lockout 1000 attempts; argon2id defaults: 19 MiB, t=2, p=1) while an open-loop probe sends ${flood.probeRate} GET /guarded per second (ES256 token) and times each with a µs clock. Idle = the probe alone, just before. Medians over ${flood.rounds.length} round(s).`,
    '',
    table(['', 'idle', 'during flood', 'ratio'], rows),
    '',
    perRound,
  ].join('\n');
}

function scaleSection(report: BenchReport): string {
  const scale = report.scale!;
  const rows = scale.fixtures.map((f) => [
    f.name,
    fmtInt(f.rows),
    fmtInt(f.revokedInView),
    fmtInt(medianOf(f.open, 'rps')),
    fmtInt(medianOf(f.guarded, 'rps')),
    fmtRatio(roundRatios(f.guarded, f.open).median),
    fmtMs(medianOf(f.guarded, 'p99')),
  ]);
  const memory = scale.fixtures.map((f) => {
    const delta = f.heapAfter - f.heapBefore;
    // Below a few thousand entries the delta is mostly unrelated heap noise (caches, JIT).
    const per =
      f.revoked >= 1000
        ? `${fmtNum(delta / f.revoked, 0)} bytes per revoked token`
        : 'too few tokens to divide: heap noise dominates';
    return `- ${f.name}: heapUsed ${fmtBytes(f.heapBefore)} → ${fmtBytes(f.heapAfter)} after loading ${fmtInt(f.revokedInView)} revoked tokens into the view: **${fmtBytes(delta)}** (${per}). Rows inserted in ${fmtNum(f.seedSeconds, 1)} s.`;
  });
  return [
    '## Scale',
    '',
    'Two ES256 fixtures with rows inserted straight into their SQLite files (better-sqlite3, 10,000 rows per transaction) while running: unexpired access-token rows, some of them revoked-but-unexpired (revoked now, expiring in an hour), which the revocation view loads on its next sync. "IssuedToken rows" counts the table afterwards (the bench login adds 2). Measured after the view held them all and its sync overlap had passed, interleaved as above.',
    '',
    table(
      [
        'fixture',
        'IssuedToken rows',
        'revoked in view',
        'unguarded req/s',
        'guarded req/s',
        'guarded/unguarded',
        'guarded p99',
      ],
      rows,
    ),
    '',
    'Memory held by the revocation view (heapUsed after two full GCs, `--expose-gc`, before and after the revoked rows were loaded, same process):',
    '',
    ...memory,
  ].join('\n');
}

function profileTables(section: BenchReport['profiles'][number]): string {
  const byLabel = new Map(section.summaries.map((s) => [s.label, s.summary]));
  const unit = section.unit;
  const parts: string[] = [`### ${section.title}`, ''];
  for (const { label, summary } of section.summaries) {
    parts.push(
      `- ${label}: ${fmtNum(summary.windowMs, 0)} ms of samples, ${fmtInt(summary.requests)} ${unit}s; profile ${summary.file.split('/').slice(-2).join('/')}`,
    );
  }
  parts.push('');
  const cols = section.summaries.map((s) => s.label);
  const categories = new Set(section.summaries.flatMap((s) => [...s.summary.categories.keys()]));
  const a = section.diff ? byLabel.get(section.diff.a)! : undefined;
  const b = section.diff ? byLabel.get(section.diff.b)! : undefined;
  const catRows = [...categories]
    .map((c) => [
      c,
      ...section.summaries.map((s) => fmtNum(s.summary.categories.get(c) ?? 0, 1)),
      ...(a && b ? [fmtNum((a.categories.get(c) ?? 0) - (b.categories.get(c) ?? 0), 1)] : []),
    ])
    .sort((x, y) => Number(y[1]) - Number(x[1]));
  parts.push(
    `Main-thread CPU by where the code lives, µs per ${unit}:`,
    '',
    table(
      ['package', ...cols, ...(a && b ? [`${section.diff!.a} − ${section.diff!.b}`] : [])],
      catRows,
    ),
    '',
  );
  const focus: ProfileSummary = a ?? section.summaries[0].summary;
  if (a && b) {
    parts.push(
      `Functions whose self time grows most from ${section.diff!.b} to ${section.diff!.a} (µs per ${unit}):`,
      '',
      table(
        ['function', 'µs'],
        top(a.self, 15, b.self).map(([k, v]) => [k, fmtNum(v, 2)]),
      ),
      '',
    );
  } else {
    parts.push(
      `Top functions by self time (µs per ${unit}):`,
      '',
      table(
        ['function', 'µs'],
        top(focus.self, 20).map(([k, v]) => [k, fmtNum(v, 2)]),
      ),
      '',
    );
  }
  parts.push(
    `Guard and auth path, inclusive time (µs per ${unit}, ${a ? section.diff!.a : section.summaries[0].label}):`,
    '',
    table(
      ['function', 'µs'],
      top(focus.inclusive, 15, undefined, isGuardFrame).map(([k, v]) => [k, fmtNum(v, 2)]),
    ),
  );
  return parts.join('\n');
}

export function renderReport(report: BenchReport, repo: string): string {
  const duration =
    report.finishedAt && (report.finishedAt.getTime() - report.startedAt.getTime()) / 60000;
  const parts: string[] = [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` (bench/run.ts). Benchmarks are not tests: `npm test` times nothing; it only runs the bench once in its smoke mode.',
    '',
    `- Run: ${report.startedAt.toISOString()}${duration ? `, ${duration.toFixed(1)} min` : ''}`,
    `- Command: \`${report.command}\` (mode: ${report.mode})`,
    `- Load average (1/5/15 min) at start: ${loadLine(report.loadBefore)}; at end: ${loadLine(report.loadAfter)}. A load well above 0 at the start means other work shared the CPUs: re-measure on an idle machine before quoting these figures.`,
    '',
    '## Machine and versions',
    '',
    machine(repo),
    '',
  ];
  if (report.targets.length > 0) {
    parts.push(
      '## Targets',
      '',
      table(
        ['target', 'goal', 'measured', 'result'],
        report.targets.map((t) => [t.name, t.goal, t.display, t.pass ? 'PASS' : 'FAIL']),
      ),
      '',
    );
  }
  if (report.http) parts.push(httpSection(report), '');
  if (report.flood) parts.push(floodSection(report), '');
  if (report.micro) {
    parts.push(
      '## Micro-benchmarks',
      '',
      `One process, no server; each figure is the median of 3 samples of ${report.micro.sampleMs} ms after a warm-up. KeyRing.fromJwks/sign/verify for each algorithm (RSA keys 2048 bits), and the revocation check of a cached token against views of two sizes.`,
      '',
      microTables(report.micro),
      '',
    );
  }
  if (report.scale) parts.push(scaleSection(report), '');
  if (report.profiles.length > 0) {
    parts.push(
      '## Profiles',
      '',
      'Taken because a target was missed (or with `--profile`): the fixture ran with `node --cpu-prof` under the same load; samples are cut to each load window with the fixture’s monotonic clock and divided by the requests served in it. Main thread only (argon2 runs on libuv threads and does not appear).',
      '',
      ...report.profiles.map((p) => `${profileTables(p)}\n`),
    );
  }
  if (report.diagnostics.length > 0) {
    parts.push('## Diagnostics', '');
    for (const d of report.diagnostics) parts.push(`- ${d.title}: ${d.lines.join(' ')}`);
    parts.push('');
  }
  parts.push(
    '## Method',
    '',
    "- Fixtures (bench/fixtures/): NestJS 12 on Express, `NODE_ENV=production`, one child process each, listening on 127.0.0.1; autocannon runs in the parent. `two-factor-app` imports `TwoFactorAuthModule` (SQLite in a temporary folder, a JWK Set generated with node:crypto) with an unguarded `GET /open` and `GET /guarded` behind `JwtTwoFactorGuard`; `stock-app` has the same routes behind `AuthGuard('jwt')` of `@nestjs/passport` with `passport-jwt` and a string HS256 secret (no revocation). Both return the same small JSON and have no other middleware.",
    '- Tokens: the two-factor fixtures create their account with `AccountService.create` and the bench logs in through the real `POST /auth/token`; each fixture is checked to refuse a missing or bad token (401) and to accept the real one before it is measured. Any non-2xx answer during a run aborts the bench.',
    '- On 2 cores the server and autocannon compete for the CPUs; every route is measured the same way, interleaved per round, so the ratios stay comparable, but absolute figures depend on the machine and on anything else running.',
    '',
  );
  return parts.join('\n');
}

/** Writes the report, keeping a hand-written analysis block of the previous file if present. */
export function writeReport(report: BenchReport, out: string, repo: string): void {
  let analysis = `${ANALYSIS_START}\n_No analysis written for this run yet._\n${ANALYSIS_END}`;
  if (existsSync(out)) {
    const previous = readFileSync(out, 'utf8');
    const start = previous.indexOf(ANALYSIS_START);
    const end = previous.indexOf(ANALYSIS_END);
    if (start >= 0 && end > start) analysis = previous.slice(start, end + ANALYSIS_END.length);
  }
  const body = renderReport(report, repo);
  writeFileSync(out, `${body}\n## Analysis\n\n${analysis}\n`);
}

export function printSummary(report: BenchReport, out: string, repo: string): void {
  console.log(`\n${'='.repeat(78)}\n`);
  const text = renderReport(report, repo);
  console.log(text);
  console.log(`Report written to ${out}`);
}
