import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type as osType, arch } from 'node:os';
import { join } from 'node:path';
import { microTables } from '../micro.js';
import {
  CAPACITY_P99_MS,
  cpuBoundPerVcpu,
  refreshCapacity,
  refreshLoads,
} from '../sections/capacity.js';
import { growthPerRotation, retainedPerRotation } from '../sections/memory.js';
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
  'pg',
  'mysql2',
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
    'The DPoP rows run on an ES256 fixture of their own, with a token bound to the client key (`cnf.jkt`): every request carries `Authorization: DPoP <token>` and a new proof (ES256, `htm`, `htu`, `iat`, `ath`, a fresh `jti`), made before the run so that signing does not load the client. The guard verifies each proof (its signature on the thread pool) and records its `jti`. Its reference is the unguarded route sent the very same requests, which ignores them.',
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
  const idleP99 = m((r) => r.idle.p99);
  const limit = Math.max(2 * idleP99, flood.floorMs);
  const rows = [
    [
      `guarded req/s (autocannon -c ${flood.hammerConnections})`,
      fmtInt(m((r) => r.idleThroughput.rps)),
      fmtInt(m((r) => r.busyThroughput.rps)),
      fmtRatio(m((r) => r.busyThroughput.rps / r.idleThroughput.rps)),
    ],
    [
      'guarded p50 (probe)',
      fmtMs(m((r) => r.idle.p50)),
      fmtMs(m((r) => r.busy.p50)),
      fmtRatio(m((r) => r.busy.p50 / r.idle.p50)),
    ],
    [
      'guarded p99 (probe)',
      fmtMs(idleP99),
      fmtMs(m((r) => r.busy.p99)),
      fmtRatio(m((r) => r.busy.p99 / r.idle.p99)),
    ],
    ['guarded max (probe)', fmtMs(m((r) => r.idle.max)), fmtMs(m((r) => r.busy.max)), ''],
    [
      'event-loop delay p99 (server, probe window; how late a 5 ms timer ran)',
      fmtMs(m((r) => r.idleLoopDelayP99)),
      fmtMs(m((r) => r.busyLoopDelayP99)),
      '',
    ],
    [
      'logins/s (2xx, storm process)',
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
    [
      'round',
      'req/s idle',
      'req/s storm',
      'ratio',
      'p99 idle',
      'p99 storm',
      'p99 limit',
      'logins/s',
    ],
    flood.rounds.map((r, i) => [
      String(i + 1),
      fmtInt(r.idleThroughput.rps),
      fmtInt(r.busyThroughput.rps),
      fmtRatio(r.busyThroughput.rps / r.idleThroughput.rps),
      fmtMs(r.idle.p99),
      fmtMs(r.busy.p99),
      fmtMs(Math.max(2 * r.idle.p99, flood.floorMs)),
      fmtNum(r.logins.rps, 1),
    ]),
  );
  const idle = flood.rounds.map((r) => r.idle.p99);
  return [
    '## Issuance under load (login storm)',
    '',
    `A login storm: ${flood.floodConnections} autocannon connections POST valid logins to /auth/token of the ES256 two-factor fixture (throttle 1,000,000/min, lockout 1000 attempts; argon2id defaults: 19 MiB, t=2, p=1), sent from a forked process of its own (bench/flood-child.ts), so that the storm's client work never shares the event loop of the measurements. The guarded route (GET /guarded, ES256 token) is measured twice per phase: its throughput with autocannon -c ${flood.hammerConnections} for ${report.duration} s (closed loop: how many requests fit), then its latency with an open-loop probe of ${flood.probeRate} GET /guarded per second for ${report.duration} s, each timed with a µs clock (how long a request waits). Idle = just before the storm, in the same round. Medians over ${flood.rounds.length} round(s); the storm runs for the whole busy phase (throughput, then probe).`,
    '',
    table(['', 'idle', 'during the storm', 'ratio'], rows),
    '',
    perRound,
    '',
    `- p99 limit during the storm: max(2 × idle p99, ${flood.floorMs} ms) = ${fmtMs(limit)}. The floor absorbs scheduler noise on 2 cores: the storm adds runnable threads (the hashing threads, the storm process) beside the server's event loop and the load generator, and a request that arrives while its core runs one of them waits a scheduler time slice or two (EEVDF's base slice is ~0.75 ms × (1 + log2 CPUs)); twice an idle p99 of a few ms is within that noise. ${flood.floorMs} ms is a few such slices, and an order of magnitude below one login (~250 ms).`,
    `- The machine's idle p99 spread across rounds: ${fmtMs(Math.min(...idle))} to ${fmtMs(Math.max(...idle))} (median ${fmtMs(median(idle))}); idle probe max up to ${fmtMs(Math.max(...flood.rounds.map((r) => r.idle.max)))}.`,
  ].join('\n');
}

/** The capacity section of BENCHMARKS.md (exported for its unit test). */
export function capacitySection(report: BenchReport): string {
  const c = report.capacity!;
  const h = c.hashing;
  const perVcpu = (rps: number) => fmtNum(rps / c.vcpus, 1);
  const rows = c.databases.map((d) =>
    d.logins && d.refreshes
      ? [
          d.label,
          fmtNum(d.logins.rps, 1),
          perVcpu(d.logins.rps),
          `${fmtMs(d.logins.p50)} / ${fmtMs(d.logins.p99)}`,
          fmtRatio(d.logins.rps / h.perSecond),
          fmtNum(d.refreshes.rps, 1),
          perVcpu(d.refreshes.rps),
          `${fmtMs(d.refreshes.p50)} / ${fmtMs(d.refreshes.p99)}`,
          d.stackCeiling ? perVcpu(d.stackCeiling.rps) : '—',
          d.stackCeiling ? fmtRatio(d.refreshes.rps / d.stackCeiling.rps) : '—',
        ]
      : [d.label, 'skipped', '', '', '', '', '', '', '', ''],
  );
  const skipped = c.databases.filter((d) => d.skipped).map((d) => `- ${d.label} ${d.skipped}.`);
  const cpuRows = c.databases.flatMap((d) =>
    (
      [
        ['logins', d.logins, d.loginsCpu, d.loginsClientCpu],
        ['refreshes', d.refreshes, d.refreshesCpu, d.refreshesClientCpu],
      ] as const
    )
      .filter(([, load, cpu]) => load && cpu)
      .map(([what, load, cpu, client]) => {
        const us = (seconds: number) => fmtInt((seconds * 1e6) / load!.requests);
        const total = cpu!.eventLoop + cpu!.niced + cpu!.other;
        const bound = cpuBoundPerVcpu(d, what);
        return [
          `${d.label}, ${what}`,
          us(cpu!.eventLoop),
          us(cpu!.niced),
          us(cpu!.other),
          us(total),
          `${fmtNum((100 * total) / (load!.seconds * c.vcpus), 0)} %`,
          client === undefined ? '—' : us(client),
          bound === Infinity ? '—' : fmtNum(bound, 0),
        ];
      }),
  );
  const moreClients = [
    ...new Set(c.databases.flatMap((d) => (d.refreshSweep ?? []).map((l) => l.clients))),
  ].join(', ');
  const sweepRows = c.databases.flatMap((d) => {
    const best = refreshCapacity(d, c.clients);
    return refreshLoads(d, c.clients).map((l) => {
      const us = (seconds: number) => fmtInt((seconds * 1e6) / l.result.requests);
      const total = l.cpu.eventLoop + l.cpu.niced + l.cpu.other;
      return [
        d.label,
        String(l.clients),
        fmtNum(l.result.rps, 1),
        perVcpu(l.result.rps),
        `${fmtMs(l.result.p50)} / ${fmtMs(l.result.p99)}`,
        us(l.cpu.eventLoop),
        us(total),
        `${fmtNum((100 * total) / (l.result.seconds * c.vcpus), 0)} %`,
        us(l.clientCpu),
        l.clients === best?.clients
          ? '**capacity**'
          : l.result.p99 > CAPACITY_P99_MS
            ? 'p99 too high'
            : '',
      ];
    });
  });
  const versions = c.databases
    .filter((d) => d.version && d.kind !== 'sqlite')
    .map((d) => `${d.label} ${d.version}`);
  return [
    '## Capacity (sample app)',
    '',
    `The built sample app (\`dist/sample-app/src/main.js\`, \`NODE_ENV=production\`, Express unless said, a fresh ES256 key, \`THROTTLE_LIMIT=1000000\`, \`LOCKOUT_MAX_ATTEMPTS=1000\`, \`TOTP_ENABLED=false\`, every other variable at its default, \`PASSWORD_CONCURRENCY\` included) in a child process on a fresh database of each kind, with ${c.clients} accounts made through \`POST /accounts\`. ${c.clients} closed-loop clients, one keep-alive connection and one account each, run from the bench runner (bench/support/load.ts \`closedLoop\`: a raw socket per client that writes each request in one piece and reads its answer to its \`Content-Length\`, at a fraction of the CPU of Node's \`http\` client, since the runner shares the cores with the app): **logins** POST their username, password and secret key to \`/auth/token\` again and again; **refreshes** log in once, then each spends its last refresh token at \`/auth/refresh\` for a new pair, forever (rotation: each refresh token works once). ${c.warmup} s of warm-up, then ${c.duration} s measured per load. SQLite is measured twice: with the sample app on Express (its default) and on Fastify (\`HTTP_ADAPTER=fastify\`, on a database of its own). Per vCPU = total ÷ os.availableParallelism() (${c.vcpus}). The app, its database server and the clients share the same ${c.vcpus} vCPU(s): the PostgreSQL and MariaDB rows are reported, not targets, since their server takes cores the app would otherwise have.`,
    '',
    table(
      [
        'database',
        'logins/s',
        'per vCPU',
        'login p50 / p99',
        'vs hashing limit',
        'refreshes/s',
        'per vCPU',
        'refresh p50 / p99',
        'stack ceiling per vCPU',
        'vs ceiling',
      ],
      rows,
    ),
    '',
    ...skipped,
    '',
    `**Refreshes at capacity.** ${c.clients} clients each waiting for its answer leave the app idle part of the time: a refresh also waits for the thread pool (its signature check) and the SQLite writer thread (its group commit), so more requests must be in flight to keep the event loop busy. The refresh load therefore runs again with ${moreClients} clients (the chains share the ${c.clients} accounts, each chain a login of its own), same warm-up and duration. The app's capacity is the most refreshes/s among the loads whose p99 stays within ${CAPACITY_P99_MS} ms (a client refreshes in the background, once per access token; ${CAPACITY_P99_MS} ms is far below what a user notices): the refresh targets are read there. The table above keeps the ${c.clients}-client figures, comparable with runs from before the sweep.`,
    '',
    table(
      [
        'database',
        'clients',
        'refreshes/s',
        'per vCPU',
        'p50 / p99',
        'event loop µs',
        'app total µs',
        'app CPU / machine',
        'load generator µs',
        '',
      ],
      sweepRows,
    ),
    '',
    '**Stack ceiling**: the same clients POST a well-formed refresh body whose token fails its signature check, for the same time: the app answers 401 after the HTTP adapter’s and Nest’s pipeline, the throttle, the body validation and one ES256 verification (on the thread pool, as a refresh’s), with no database work and no signing. No refresh can be faster than that with this stack on this machine; "vs ceiling" = refreshes/s ÷ that rate.',
    '',
    `The app's CPU time per request during each measured run, by thread (utime + stime of /proc/<pid>/task/*/stat): the event loop (main thread), the password hasher's threads (the only ones at a lower priority, nice > 0) and the others (V8's GC and compiler, libuv's pool). "App CPU / machine" is the app's share of all the machine's vCPUs over the run: well below 100 % means the app waited (for hashing slots, its event loop, the database or the clients), not that the machine ran out of CPU. "Load generator µs" is the CPU the bench runner's own process (every client runs there) spent per request over the same run. "CPU bound per vCPU" = 1 s ÷ (the app's total + the load generator's µs per request): the most requests per second per vCPU these cores could give if every one of them worked for the app and its clients alone (one process per vCPU, no idle time); for PostgreSQL and MariaDB their server's CPU comes on top.`,
    '',
    table(
      [
        'database, load',
        'event loop µs',
        'hashing threads µs',
        'other threads µs',
        'total µs',
        'app CPU / machine',
        'load generator µs',
        'CPU bound per vCPU',
      ],
      cpuRows,
    ),
    '',
    `- Hashing limit (bench/hashing.ts, a separate process): \`@node-rs/argon2\` \`verify\` of a hash made at the module's defaults (\`TWO_FACTOR_AUTH_DEFAULTS.password\`: argon2id, m=${fmtInt(h.memoryCost)} KiB, t=${h.timeCost}, p=${h.parallelism}), ${h.threads} calls in flight for ${fmtNum(h.seconds, 1)} s: **${fmtNum(h.perSecond, 1)}/s, ${fmtNum(h.perVcpu, 1)} per vCPU**. A login verifies one such hash: no login path can go faster on this machine. "vs hashing limit" = logins/s ÷ ${fmtNum(h.perSecond, 1)}.`,
    h.defaultConcurrency === h.threads
      ? `- The module's default \`password.concurrency\` here is ${h.defaultConcurrency}, one hash per vCPU: the default configuration can reach this limit.`
      : `- With the module's default \`password.concurrency\` here (${h.defaultConcurrency}) calls in flight: ${fmtNum(h.atDefaultConcurrency, 1)}/s, the most logins/s the default configuration allows on this machine.`,
    ...(versions.length > 0 ? [`- Servers: ${versions.join('; ')}.`] : []),
  ].join('\n');
}

function usersSection(report: BenchReport): string {
  const u = report.users!;
  const all = [u.open, u.warm, u.firstSight];
  const ratio = (s: Series) =>
    s.openId ? fmtRatio(roundRatios(s, u.open).median) : '1.00x (reference)';
  const warm = medianOf(u.warm, 'rps');
  const first = medianOf(u.firstSight, 'rps');
  const firstSightUs = (1 / first - 1 / warm) * 1e6;
  return [
    '## Many users',
    '',
    `The ES256 two-factor fixture under autocannon -c ${u.connections}, with many distinct tokens instead of one. **Warm**: ${fmtInt(u.tokens)} live access tokens (more than the ${u.connections} connections could hold one each), each request taking the next token round-robin across all connections; before each warm run every token is sent once (the verifier held ${fmtInt(u.cachedAfterWarm)} tokens after the first pass; its cache keeps 10,000 by default, \`revocation.verifiedCacheSize\`). **First sight**: each request carries a token never sent before (${fmtInt(u.firstSightTokens)} made), so the guard verifies its signature and claims and reads its record (one indexed query on SQLite), then caches it. The tokens are made by the runner: rows inserted into the fixture's SQLite file as TokenIssuer writes them (type access, sub, kid, exp; bench/support/seed.ts), signed with the fixture's key (\`typ\` at+jwt, kid; iss, sub, iat, nbf, exp, jti); ${fmtNum(u.seedSeconds, 1)} s in all. The unguarded route gets the same rotating Authorization headers, so that the load generator does the same work for all three. ${report.rounds} interleaved round(s) of ${report.duration} s; ratios within a round, medians.`,
    '',
    table(
      ['route', 'req/s', 'p50', 'p99', 'vs unguarded (same round)'],
      all.map((s) => [
        s.label,
        fmtInt(medianOf(s, 'rps')),
        fmtMs(medianOf(s, 'p50')),
        fmtMs(medianOf(s, 'p99')),
        ratio(s),
      ]),
    ),
    '',
    table(
      ['route', ...u.open.runs.map((_, i) => `round ${i + 1} req/s`)],
      all.map((s) => [s.label, ...s.runs.map((r) => fmtInt(r.rps))]),
    ),
    '',
    `- Cost of first sight: **${fmtNum(firstSightUs, 1)} µs per request** more than a warm token (1/first-sight req/s − 1/warm req/s, medians; machine-wide: server and load generator together).`,
    ...(u.reused > 0
      ? [
          `- The first-sight pool ran short: ${fmtInt(u.reused)} requests re-used a token, so the first-sight figure is slightly optimistic.`,
        ]
      : []),
  ].join('\n');
}

const WHAT_A_ROTATION_KEEPS =
  "What a rotation keeps is rows in the database (the spent token's `revoked_at`, the new pair): it adds nothing to the revocation log, so the in-memory revocation view does not grow with rotations, and the verifier's cache of access tokens is capped (`revocation.verifiedCacheSize`, 10,000).";

function memorySection(report: BenchReport): string {
  const m = report.memory!;
  const readings = [m.idle, m.afterLogins, ...m.samples];
  const start = m.afterLogins;
  const end = m.samples.at(-1)!;
  const perRotation = growthPerRotation(m);
  const retained = retainedPerRotation(m);
  const afterGcPerRotation = retained.rss;
  const heapPerRotation = retained.heap;
  const hour = m.rotationRate * 3600;
  const opt = (v: number | undefined) => (v !== undefined ? fmtBytes(v) : '');
  const rows = readings.map((r) => [
    r.label,
    fmtNum(r.at, 1),
    fmtBytes(r.rss),
    fmtBytes(r.heapTotal),
    opt(r.heapUsed),
    opt(r.rssAfterGc),
    r.rotations !== undefined ? fmtInt(r.rotations) : '',
  ]);
  const delta = (a: number, b: number) => `${fmtBytes(a)} → ${fmtBytes(b)} (${fmtBytes(b - a)})`;
  return [
    '## Memory (sample app, SQLite)',
    '',
    `The sample app as in the capacity section, on SQLite. RSS is VmRSS of /proc/<pid>/status; "V8 heap" is V8's committed heap (\`heapTotal\`), as it is at the reading; at the checkpoints the bench host then runs two full GCs (the app runs with \`--expose-gc\`; no GC is forced in between) and the heap in use and RSS are read again. Logins: ${m.logins > 0 ? `8 closed-loop clients until ${fmtInt(m.logins)} had succeeded, which took ${fmtNum(m.loginSeconds, 1)} s` : 'none'}. Then refresh rotations (8 clients chaining their refresh tokens, as in the capacity section) for ${fmtNum(m.rotationSeconds, 1)} s, RSS sampled about a dozen times along the run.`,
    '',
    table(
      ['checkpoint', 'at (s)', 'RSS', 'V8 heap', 'heap after GC', 'RSS after GC', 'rotations'],
      rows,
    ),
    '',
    `- ${fmtInt(m.rotations)} rotations at ${fmtNum(m.rotationRate, 0)}/s. Over the run: RSS ${delta(start.rss, end.rss)}, of which V8's committed heap ${delta(start.heapTotal, end.heapTotal)}; after full GCs, heap in use ${delta(start.heapUsed!, end.heapUsed!)} and RSS ${delta(start.rssAfterGc!, end.rssAfterGc!)}.`,
    `- Growth per 100,000 rotations: RSS as sampled **${fmtBytes(perRotation * 100_000)}** (least-squares slope over the samples of the run's second half, after its start-up transients); from the half-way checkpoint to the end, after full GCs: RSS **${fmtBytes(afterGcPerRotation * 100_000)}**, V8 heap in use (retained objects) **${fmtBytes(heapPerRotation * 100_000)}**.`,
    m.rotationSeconds >= 3600
      ? `- **Measured over an hour of rotations** (${fmtNum(m.rotationSeconds / 60, 1)} min): RSS as sampled went ${delta(start.rss, end.rss)}, and after full GCs ${delta(start.rssAfterGc!, end.rssAfterGc!)}, with the heap in use ${delta(start.heapUsed!, end.heapUsed!)}. ${WHAT_A_ROTATION_KEEPS}`
      : `- An hour at the measured rate is ${fmtInt(hour)} rotations. **Projection, not a measurement** (\`npm run bench -- --only=memory --memory-rotation=3600\` measures it): along those lines an hour would add ${fmtBytes(perRotation * hour)} of RSS as sampled, ${fmtBytes(afterGcPerRotation * hour)} of RSS after GCs, ${fmtBytes(heapPerRotation * hour)} of retained heap. A straight line through ${fmtNum(m.rotationSeconds, 0)} s cannot tell a leak from V8 letting its heap grow until its next full collection (the "V8 heap" column), nor show a plateau that comes later: the heap after GC is the sign of retained objects. ${WHAT_A_ROTATION_KEEPS}`,
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
  if (report.capacity) parts.push(capacitySection(report), '');
  if (report.users) parts.push(usersSection(report), '');
  if (report.memory) parts.push(memorySection(report), '');
  if (report.profiles.length > 0) {
    parts.push(
      '## Profiles',
      '',
      'Taken because a target was missed (or with `--profile`): the fixture (or the sample app) ran with `node --cpu-prof` under the same load; samples are cut to each load window with the process’s monotonic clock and divided by the requests served in it. Main thread only (argon2 runs on other threads and does not appear).',
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
    '- Capacity and memory measure the sample app itself (dist/sample-app, started as an operator would: environment variables only; bench/fixtures/sample-app-host.ts imports its entry point and adds the IPC commands the bench needs). Their load comes from closed-loop clients in the runner, which can chain refresh tokens.',
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
