/** Command-line flags and environment variables of `npm run bench`. */

export type Section = 'micro' | 'http' | 'flood' | 'scale' | 'capacity' | 'users' | 'memory';
export const ALL_SECTIONS: readonly Section[] = [
  'micro',
  'http',
  'flood',
  'scale',
  'capacity',
  'users',
  'memory',
];

/** Databases of the capacity section: SQLite always, the servers when they answer. */
export type DatabaseKind = 'sqlite' | 'postgres' | 'mariadb';

export interface BenchOptions {
  /** `full`, `quick` (shorter rounds) or `smoke` (one tiny round of everything, for CI). */
  mode: 'full' | 'quick' | 'smoke';
  rounds: number;
  /** Seconds per measured autocannon run. */
  duration: number;
  /** Seconds of unrecorded load per variant before the first round. */
  warmup: number;
  connections: number;
  /** Milliseconds per micro-benchmark sample (3 samples, median). */
  microMs: number;
  /** Concurrent login requests of the flood (from its own process). */
  floodConnections: number;
  /** autocannon connections measuring the guarded route's throughput, idle and during the flood. */
  floodHammerConnections: number;
  /** Requests per second of the latency probe on the guarded route. */
  probeRate: number;
  /** IssuedToken rows and revoked-but-unexpired tokens of the large scale fixture. */
  scaleRows: number;
  scaleRevoked: number;
  /** Wait until the revocation view's sync overlap has passed before measuring. */
  settleScale: boolean;
  /** Capacity: seconds of each measured load (logins, refreshes) and of its warm-up. */
  capacityDuration: number;
  capacityWarmup: number;
  /** Capacity: closed-loop clients, one account each. */
  capacityClients: number;
  /**
   * Capacity: the refresh load again with these many clients (the accounts shared), to find
   * the most the app serves within the latency bound, not what 8 clients happen to ask of it.
   */
  capacityMoreClients: number[];
  /** Capacity: seconds of the argon2 hashing-limit measurement (per concurrency measured). */
  hashingSeconds: number;
  /** Capacity: databases to measure (servers are skipped when they do not answer). */
  databases: DatabaseKind[];
  /** Admin URLs of the database servers (a fresh database is created in each per run). */
  postgresUrl: string;
  mariadbUrl: string;
  /** Many users: distinct live tokens of the warm round (the module caches 10,000 by default). */
  usersTokens: number;
  /** Memory: successful logins before the second reading; seconds of refresh rotations. */
  memoryLogins: number;
  memoryRotationSeconds: number;
  memorySampleSeconds: number;
  /** `auto`: profile only when a target is missed (not in smoke mode). */
  profile: 'auto' | 'always' | 'never';
  sections: Section[];
  /** Where the report is written (BENCHMARKS.md at the repository root by default). */
  out: string;
  keepTemp: boolean;
}

const HELP = `Usage: npm run bench -- [flags]   (or: node dist/bench/run.js [flags])

  --quick              shorter rounds (3 rounds of 3 s)            env BENCH_QUICK=1
  --smoke              one 0.5 s round of everything, tiny scale   env BENCH_SMOKE=1
  --rounds=N           rounds per comparison (default 3)           env BENCH_ROUNDS
  --duration=S         seconds per measured run (default 10)       env BENCH_DURATION
                       (capacity loads: 15 s by default, 5 s with --quick)
  --connections=N      autocannon connections (default 50)         env BENCH_CONNECTIONS
  --only=a,b           sections among micro,http,flood,scale,capacity,users,memory
                         flood     guarded route idle vs during a login storm sent from a
                                   separate process (throughput and p99)
                         capacity  logins/s and refreshes/s of the sample app per vCPU on
                                   SQLite, PostgreSQL, MariaDB; the argon2 hashing limit
                         users     guarded route with 10,000 distinct tokens (warm) and with
                                   a new token on every request (first sight)
                         memory    sample app RSS idle, after 10,000 logins, during refresh
                                   rotations
  --memory-rotation=S  seconds of refresh rotations in the memory section (default 60;
                       3600 measures an hour's worth instead of projecting it)
                                                                   env BENCH_MEMORY_ROTATION
  --profile / --no-profile
                       CPU-profile the fixtures (default: only when a target is missed)
  --out=FILE           report file (default BENCHMARKS.md)
  --keep               keep the temporary folder (databases, keys, CPU profiles)

  Database servers of the capacity section (a database is created per run, then dropped):
    BENCH_POSTGRES_URL   default postgres://postgres@127.0.0.1:5432/postgres
    BENCH_MARIADB_URL    default mysql://root@127.0.0.1:3306
  With CI=true in smoke mode only SQLite is measured.
`;

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

export function parseOptions(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  defaultOut: string,
): BenchOptions | 'help' {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '-h' || arg === '--help') return 'help';
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`Unknown argument ${arg}\n\n${HELP}`);
    flags.set(match[1], match[2] ?? 'true');
  }
  const known = [
    'quick',
    'smoke',
    'rounds',
    'duration',
    'connections',
    'only',
    'profile',
    'no-profile',
    'out',
    'memory-rotation',
    'keep',
  ];
  for (const name of flags.keys()) {
    if (!known.includes(name)) throw new Error(`Unknown flag --${name}\n\n${HELP}`);
  }
  const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0';
  const mode =
    flags.has('smoke') || truthy(env.BENCH_SMOKE)
      ? 'smoke'
      : flags.has('quick') || truthy(env.BENCH_QUICK)
        ? 'quick'
        : 'full';
  const preset = {
    full: {
      rounds: 3,
      duration: 10,
      warmup: 3,
      microMs: 500,
      capacityDuration: 15,
      hashingSeconds: 5,
      usersTokens: 10_000,
      memoryLogins: 10_000,
      memoryRotationSeconds: 60,
      memorySampleSeconds: 5,
    },
    quick: {
      rounds: 3,
      duration: 3,
      warmup: 1,
      microMs: 200,
      capacityDuration: 5,
      hashingSeconds: 2,
      usersTokens: 10_000,
      memoryLogins: 2_000,
      memoryRotationSeconds: 15,
      memorySampleSeconds: 2.5,
    },
    smoke: {
      rounds: 1,
      duration: 0.5,
      warmup: 0.3,
      microMs: 20,
      capacityDuration: 0.5,
      hashingSeconds: 0.3,
      usersTokens: 500,
      memoryLogins: 24,
      memoryRotationSeconds: 1.5,
      memorySampleSeconds: 0.5,
    },
  }[mode];
  const explicitDuration = flags.get('duration') ?? env.BENCH_DURATION;
  const sections = flags.has('only')
    ? flags
        .get('only')!
        .split(',')
        .map((s) => {
          if (!ALL_SECTIONS.includes(s as Section)) {
            throw new Error(`--only takes ${ALL_SECTIONS.join(', ')}; got ${s}`);
          }
          return s as Section;
        })
    : [...ALL_SECTIONS];
  const memoryRotationSeconds = positive(
    '--memory-rotation',
    flags.get('memory-rotation') ?? env.BENCH_MEMORY_ROTATION,
    preset.memoryRotationSeconds,
  );
  return {
    mode,
    rounds: Math.round(
      positive('--rounds', flags.get('rounds') ?? env.BENCH_ROUNDS, preset.rounds),
    ),
    duration: positive('--duration', explicitDuration, preset.duration),
    warmup: preset.warmup,
    connections: Math.round(
      positive('--connections', flags.get('connections') ?? env.BENCH_CONNECTIONS, 50),
    ),
    microMs: preset.microMs,
    floodConnections: mode === 'smoke' ? 4 : 16,
    floodHammerConnections: mode === 'smoke' ? 4 : 16,
    probeRate: 200,
    scaleRows: mode === 'smoke' ? 1_000 : 1_000_000,
    scaleRevoked: mode === 'smoke' ? 100 : 100_000,
    settleScale: mode !== 'smoke',
    capacityDuration: positive('--duration', explicitDuration, preset.capacityDuration),
    capacityWarmup: preset.warmup,
    capacityClients: 8,
    capacityMoreClients: [16, 32],
    hashingSeconds: preset.hashingSeconds,
    // CI's smoke run stays short: SQLite only (the servers are measured by full and quick runs).
    databases: mode === 'smoke' && truthy(env.CI) ? ['sqlite'] : ['sqlite', 'postgres', 'mariadb'],
    postgresUrl: env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    mariadbUrl: env.BENCH_MARIADB_URL || 'mysql://root@127.0.0.1:3306',
    usersTokens: preset.usersTokens,
    memoryLogins: preset.memoryLogins,
    memoryRotationSeconds,
    // About a dozen readings whatever the length of the run.
    memorySampleSeconds: Math.max(preset.memorySampleSeconds, memoryRotationSeconds / 12),
    profile: flags.has('no-profile')
      ? 'never'
      : flags.has('profile')
        ? 'always'
        : mode === 'smoke'
          ? 'never'
          : 'auto',
    sections,
    out: flags.get('out') ?? defaultOut,
    keepTemp: flags.has('keep'),
  };
}

export { HELP };
