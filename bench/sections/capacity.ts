/**
 * Capacity of the sample app (dist/sample-app, production mode): logins/s and refreshes/s of 8
 * closed-loop clients on a fresh database of each kind, per vCPU, next to the machine's argon2
 * hashing limit (bench/hashing.ts, in a process of its own); refreshes again with 16 and 32
 * clients, to find the most the app serves within a latency bound (its capacity).
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, DATABASE_LABELS, type BenchDatabase } from '../support/databases.js';
import { closedLoop, type LoadResult } from '../support/load.js';
import type { BenchOptions, DatabaseKind } from '../support/options.js';
import { findProfile, summariseProfile } from '../support/profile.js';
import type {
  BenchReport,
  CapacityDatabase,
  HashingLimit,
  ProfileSection,
  RefreshLoad,
  Target,
} from '../support/results.js';
import { cpuBetween, SampleApp, type Credentials, type ThreadCpu } from '../support/sample-app.js';
import { fmtInt, fmtMs, fmtNum, fmtRatio } from '../support/stats.js';

const HASHING = new URL('../hashing.js', import.meta.url);
const KINDS: readonly DatabaseKind[] = ['sqlite', 'postgres', 'mariadb'];

/** The issue's targets, per vCPU, on SQLite. */
export const LOGINS_PER_VCPU_TARGET = 60;
export const REFRESHES_PER_VCPU_TARGET = 1000;
/** When the machine's hashing limit is below the login target: logins vs that limit. */
export const HASHING_RATIO_TARGET = 0.85;
/** A refresh (its database work and two signatures) costs at most as much again as the stack around it. */
export const STACK_RATIO_TARGET = 0.5;
/**
 * The latency bound of capacity: the most refreshes/s among the loads whose p99 stays within
 * it. A client refreshes in the background, once per access token; 50 ms is far below what a
 * user notices and leaves room for the network.
 */
export const CAPACITY_P99_MS = 50;

const log = (line: string) => console.log(line);

interface TokenAnswer {
  access_token?: string;
  refresh_token?: string;
}

function refreshTokenOf(body: unknown, what: string): string {
  const token = (body as TokenAnswer | undefined)?.refresh_token;
  if (typeof token !== 'string') throw new Error(`${what} answered without a refresh_token`);
  return token;
}

/** 8 clients, one account each, logging in again and again (warm-up first, unrecorded). */
export async function loginLoad(
  app: SampleApp,
  accounts: Credentials[],
  seconds: number | { until: () => boolean },
  onAnswer?: () => void,
): Promise<LoadResult> {
  return closedLoop(app.url(''), {
    clients: accounts.length,
    ...(typeof seconds === 'number' ? { duration: seconds } : { done: seconds.until }),
    next: (client) => ({ method: 'POST', path: '/auth/token', body: accounts[client] }),
    onAnswer: (_, body) => {
      if (typeof (body as TokenAnswer | undefined)?.access_token !== 'string') {
        throw new Error('POST /auth/token answered without an access_token');
      }
      onAnswer?.();
    },
  });
}

/**
 * Refresh chains: each client logs in once, then spends its last refresh token for a new pair,
 * again and again (a refresh token works once, so every request depends on the previous
 * answer). `chains` keeps each client's current token between calls.
 */
export async function refreshChains(
  app: SampleApp,
  accounts: Credentials[],
): Promise<{ run: (seconds: number, onAnswer?: () => void) => Promise<LoadResult> }> {
  const chains = await Promise.all(
    accounts.map(async (account) => {
      const response = await fetch(app.url('/auth/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(account),
      });
      if (response.status !== 200) {
        throw new Error(`POST /auth/token answered ${response.status}: ${await response.text()}`);
      }
      return refreshTokenOf(await response.json(), 'POST /auth/token');
    }),
  );
  return {
    run: (seconds, onAnswer) =>
      closedLoop(app.url(''), {
        clients: accounts.length,
        duration: seconds,
        next: (client) => ({
          method: 'POST',
          path: '/auth/refresh',
          body: { refresh_token: chains[client] },
        }),
        onAnswer: (client, body) => {
          chains[client] = refreshTokenOf(body, 'POST /auth/refresh');
          onAnswer?.();
        },
      }),
  };
}

type Window = (label: string, edge: 'start' | 'end', requests?: number) => Promise<void>;
type MeasuredFields =
  | 'logins'
  | 'refreshes'
  | 'loginsCpu'
  | 'refreshesCpu'
  | 'loginsClientCpu'
  | 'refreshesClientCpu'
  | 'refreshSweep'
  | 'stackCeiling';

/** CPU seconds of this process (the load generator: every client runs here) since `from`. */
function clientCpuSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

/** One measured run of a load: its answers, the app's CPU and the load generator's. */
async function measuredRun(
  app: SampleApp,
  run: () => Promise<LoadResult>,
): Promise<{ result: LoadResult; cpu: ThreadCpu; clientCpu: number }> {
  const cpu = app.cpu();
  const clientCpu = process.cpuUsage();
  const result = await run();
  return { result, clientCpu: clientCpuSince(clientCpu), cpu: cpuBetween(cpu, app.cpu()) };
}

/**
 * Logins, then refreshes, on one running app: a warm-up of each, then the measured run; with
 * `sweep`, refreshes again with each of `capacityMoreClients` clients.
 */
async function measureApp(
  app: SampleApp,
  options: BenchOptions,
  loads: { logins: boolean; refreshes: boolean; sweep?: boolean },
  onWindow?: Window,
): Promise<Pick<CapacityDatabase, MeasuredFields>> {
  const accounts = await app.createAccounts(options.capacityClients);
  const result: Pick<CapacityDatabase, MeasuredFields> = {};
  if (loads.logins) {
    await loginLoad(app, accounts, options.capacityWarmup);
    await onWindow?.('POST /auth/token', 'start');
    const run = await measuredRun(app, () => loginLoad(app, accounts, options.capacityDuration));
    result.logins = run.result;
    result.loginsCpu = run.cpu;
    result.loginsClientCpu = run.clientCpu;
    await onWindow?.('POST /auth/token', 'end', result.logins.requests);
  }
  if (loads.refreshes) {
    const chains = await refreshChains(app, accounts);
    await chains.run(options.capacityWarmup);
    await onWindow?.('POST /auth/refresh', 'start');
    const run = await measuredRun(app, () => chains.run(options.capacityDuration));
    result.refreshes = run.result;
    result.refreshesCpu = run.cpu;
    result.refreshesClientCpu = run.clientCpu;
    await onWindow?.('POST /auth/refresh', 'end', result.refreshes.requests);
    if (loads.sweep) result.refreshSweep = await refreshSweep(app, accounts, options);
    // The same route refusing a token at its signature: the stack's ceiling, no database. A
    // real refresh token with its signature altered: the app's key verifies it, and says no.
    const login = await fetch(app.url('/auth/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(accounts[0]),
    });
    const genuine = refreshTokenOf(await login.json(), 'POST /auth/token');
    const forged = `${genuine.slice(0, -4)}${genuine.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const refused = (seconds: number) =>
      closedLoop(app.url(''), {
        clients: accounts.length,
        duration: seconds,
        expectStatus: 401,
        next: () => ({
          method: 'POST',
          path: '/auth/refresh',
          body: { refresh_token: forged },
        }),
      });
    await refused(options.capacityWarmup);
    result.stackCeiling = await refused(options.capacityDuration);
  }
  return result;
}

/** The refresh load with each of `capacityMoreClients` clients (chains share the accounts). */
async function refreshSweep(
  app: SampleApp,
  accounts: Credentials[],
  options: BenchOptions,
): Promise<RefreshLoad[]> {
  const loads: RefreshLoad[] = [];
  for (const clients of options.capacityMoreClients) {
    const chains = await refreshChains(
      app,
      Array.from({ length: clients }, (_, i) => accounts[i % accounts.length]),
    );
    await chains.run(options.capacityWarmup);
    loads.push({
      clients,
      ...(await measuredRun(app, () => chains.run(options.capacityDuration))),
    });
  }
  return loads;
}

/**
 * Every refresh load measured on `d`: the base clients first, then the sweep. Each with its
 * client count, answer rate and CPU.
 */
export function refreshLoads(d: CapacityDatabase, baseClients: number): RefreshLoad[] {
  if (!d.refreshes || !d.refreshesCpu || d.refreshesClientCpu === undefined) return [];
  return [
    {
      clients: baseClients,
      result: d.refreshes,
      cpu: d.refreshesCpu,
      clientCpu: d.refreshesClientCpu,
    },
    ...(d.refreshSweep ?? []),
  ];
}

/**
 * The app's refresh capacity on `d`: the load that served the most refreshes/s with its p99
 * within `CAPACITY_P99_MS` (the base load if none did).
 */
export function refreshCapacity(d: CapacityDatabase, baseClients: number): RefreshLoad | null {
  const loads = refreshLoads(d, baseClients);
  if (loads.length === 0) return null;
  const within = loads.filter((l) => l.result.p99 <= CAPACITY_P99_MS);
  return (within.length > 0 ? within : loads.slice(0, 1)).reduce((best, l) =>
    l.result.rps > best.result.rps ? l : best,
  );
}

async function measureDatabase(
  db: BenchDatabase,
  dir: string,
  options: BenchOptions,
  adapter: 'express' | 'fastify' = 'express',
): Promise<CapacityDatabase> {
  const label = adapter === 'express' ? db.label : `${db.label} (Fastify)`;
  const app = await SampleApp.start(`capacity-${db.kind}-${adapter}`, {
    databaseUrl: db.url,
    dir,
    env: { HTTP_ADAPTER: adapter },
  });
  try {
    const measured = await measureApp(app, options, {
      logins: true,
      refreshes: true,
      sweep: true,
    });
    const vcpus = availableParallelism();
    const line = (what: string, r: LoadResult) =>
      `${fmtNum(r.rps, 1)} ${what}/s (${fmtNum(r.rps / vcpus, 1)} per vCPU), p50 ${fmtMs(r.p50)}, p99 ${fmtMs(r.p99)}`;
    log(`  ${label}: ${line('logins', measured.logins!)}`);
    log(`  ${label}: ${line('refreshes', measured.refreshes!)}`);
    for (const l of measured.refreshSweep ?? []) {
      log(`  ${label}: ${line(`refreshes with ${l.clients} clients`, l.result)}`);
    }
    log(`  ${label}: ${line('refused refreshes (the stack ceiling)', measured.stackCeiling!)}`);
    return { kind: db.kind, adapter, label, version: db.version, ...measured };
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- sample app output ---\n${app.recentOutput}`, {
      cause: error,
    });
  } finally {
    await app.stop();
  }
}

/** bench/hashing.js in a child process. */
export function runHashingChild(seconds: number): Promise<HashingLimit> {
  const child = fork(fileURLToPath(HASHING), [], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      BENCH_HASHING_MS: String(Math.round(seconds * 1000)),
      // @node-rs/argon2's async calls run on libuv's pool: at least one thread per vCPU.
      UV_THREADPOOL_SIZE: String(Math.max(4, availableParallelism())),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let results: HashingLimit | undefined;
    child.on('message', (m) => {
      results = (m as { results: HashingLimit }).results;
    });
    child.on('exit', (code) =>
      results ? resolve(results) : reject(new Error(`bench/hashing exited with ${code}`)),
    );
  });
}

export async function runCapacity(dir: string, options: BenchOptions, report: BenchReport) {
  const vcpus = availableParallelism();
  log(
    `\nCapacity: the sample app, ${options.capacityClients} closed-loop clients, ${options.capacityDuration} s per load after ${options.capacityWarmup} s of warm-up; ${vcpus} vCPU(s)`,
  );
  const databases: CapacityDatabase[] = [];
  for (const kind of KINDS) {
    const label = DATABASE_LABELS[kind];
    if (!options.databases.includes(kind)) {
      databases.push({
        kind,
        adapter: 'express',
        label,
        skipped: 'skipped: not measured in CI smoke runs',
      });
      log(`  ${label}: skipped (CI smoke run)`);
      continue;
    }
    const db = await createDatabase(kind, 'tfa_bench_capacity', dir, {
      postgres: options.postgresUrl,
      mariadb: options.mariadbUrl,
    });
    if ('unavailable' in db) {
      databases.push({
        kind,
        adapter: 'express',
        label,
        skipped: `skipped: not reachable (${db.unavailable})`,
      });
      log(`  ${label}: skipped, not reachable (${db.unavailable})`);
      continue;
    }
    try {
      databases.push(await measureDatabase(db, dir, options));
    } finally {
      await db.drop();
    }
    if (kind === 'sqlite') {
      // The sample app's other adapter, on a database of its own: what the HTTP stack costs.
      const fastify = await createDatabase(kind, 'tfa_bench_capacity_fastify', dir, {
        postgres: options.postgresUrl,
        mariadb: options.mariadbUrl,
      });
      if ('unavailable' in fastify) throw new Error(fastify.unavailable);
      databases.push(await measureDatabase(fastify, dir, options, 'fastify'));
    }
  }
  log(`  hashing limit: argon2 verify in a separate process, ${options.hashingSeconds} s…`);
  const hashing = await runHashingChild(options.hashingSeconds);
  log(
    `  hashing limit: ${fmtNum(hashing.perSecond, 1)}/s with ${hashing.threads} in flight (${fmtNum(hashing.perVcpu, 1)} per vCPU); ${fmtNum(hashing.atDefaultConcurrency, 1)}/s with ${hashing.defaultConcurrency} (the module's default concurrency)`,
  );
  report.capacity = {
    vcpus,
    clients: options.capacityClients,
    duration: options.capacityDuration,
    warmup: options.capacityWarmup,
    databases,
    hashing,
  };
}

/**
 * The most refreshes (or logins) per second per vCPU that the machine's CPUs could give if
 * every core worked for the app and the load generator only: 1 s of CPU per vCPU ÷ (the app's
 * CPU per request + the load generator's). `Infinity` when the CPU was not measured.
 */
export function cpuBoundPerVcpu(d: CapacityDatabase, load: 'logins' | 'refreshes'): number {
  const result = d[load];
  const cpu = d[`${load}Cpu`];
  const clientCpu = d[`${load}ClientCpu`];
  if (!result || !cpu || clientCpu === undefined || result.requests === 0) return Infinity;
  const { app, client } = cpuPerRequest({ result, cpu, clientCpu });
  return 1 / (app + client);
}

/** CPU seconds per request of a measured run: the app's (every thread) and the load generator's. */
export function cpuPerRequest(run: Pick<RefreshLoad, 'result' | 'cpu' | 'clientCpu'>) {
  const { result, cpu, clientCpu } = run;
  return {
    loop: cpu.eventLoop / result.requests,
    app: (cpu.eventLoop + cpu.niced + cpu.other) / result.requests,
    client: clientCpu / result.requests,
  };
}

export function capacityTargets(report: BenchReport): Target[] {
  const capacity = report.capacity;
  const measured = (adapter: 'express' | 'fastify') =>
    capacity?.databases.find(
      (d) => d.kind === 'sqlite' && d.adapter === adapter && d.logins && d.refreshes,
    );
  const sqlite = measured('express');
  if (!capacity || !sqlite) return [];
  const { vcpus, hashing } = capacity;
  const logins = sqlite.logins!.rps / vcpus;
  // A login is one hash plus its request: the target is out of this machine's reach when it
  // needs more of the hashing limit than a login path can use (HASHING_RATIO_TARGET) while the
  // app's event loop and the load generator share the same cores.
  const machineBound = hashing.perVcpu * HASHING_RATIO_TARGET < LOGINS_PER_VCPU_TARGET;
  const targets: Target[] = [
    {
      id: 'capacity-logins',
      name: `logins/s per vCPU (SQLite)${machineBound ? ` (machine-bound: the hashing limit is ${fmtNum(hashing.perVcpu, 1)}/s per vCPU; ${fmtRatio(HASHING_RATIO_TARGET)} of it is ${fmtNum(hashing.perVcpu * HASHING_RATIO_TARGET, 1)})` : ''}`,
      goal: `≥ ${LOGINS_PER_VCPU_TARGET}`,
      value: logins,
      display: fmtNum(logins, 1),
      pass: logins >= LOGINS_PER_VCPU_TARGET,
    },
  ];
  if (machineBound) {
    const ratio = sqlite.logins!.rps / hashing.perSecond;
    targets.push({
      id: 'capacity-hashing',
      name: "logins/s vs the machine's hashing limit (SQLite)",
      goal: `≥ ${fmtRatio(HASHING_RATIO_TARGET)}`,
      value: ratio,
      display: fmtRatio(ratio),
      pass: ratio >= HASHING_RATIO_TARGET,
    });
  }
  for (const d of [sqlite, measured('fastify')]) {
    const at = d && refreshCapacity(d, capacity.clients);
    if (!d || !at) continue;
    const refreshes = at.result.rps / vcpus;
    // One process: its event loop serves every request, whatever the other cores could do.
    const { loop, app, client } = cpuPerRequest(at);
    const bound = 1 / (app + client);
    const adapter = d.adapter === 'express' ? 'Express' : 'Fastify';
    const loopBound = loop > 0 ? 1 / loop / vcpus : Infinity;
    const named =
      bound < REFRESHES_PER_VCPU_TARGET
        ? ` (CPU-bound here: a refresh takes ${fmtInt(app * 1e6)} µs of CPU in the app and ${fmtInt(client * 1e6)} µs in the load generator on the same cores, so ${vcpus} vCPUs fit at most ${fmtNum(bound, 0)}/s per vCPU)`
        : loopBound < REFRESHES_PER_VCPU_TARGET
          ? ` (event-loop-bound: the app's one event loop spends ${fmtInt(loop * 1e6)} µs per refresh, so it serves at most ${fmtNum(loopBound * vcpus, 0)}/s, ${fmtNum(loopBound, 0)} per vCPU on ${vcpus} vCPUs; the cores could give ${fmtNum(bound, 0)} per vCPU to a second event loop, but not on one SQLite file: see docs/DECISIONS.md)`
          : refreshes < REFRESHES_PER_VCPU_TARGET
            ? ` (no CPU is full: the event loop worked ${fmtNum(100 * loop * at.result.rps, 0)} % of the time and the app used ${fmtNum((100 * app * at.result.rps) / vcpus, 0)} % of the machine; a refresh spends the rest of its time handed between the app's threads (thread pool, SQLite writer): see docs/DECISIONS.md, "Refresh capacity")`
            : '';
    targets.push({
      id: d.adapter === 'express' ? 'capacity-refreshes' : 'capacity-refreshes-fastify',
      name: `refreshes/s per vCPU at capacity (SQLite, ${adapter}: ${at.clients} clients, p99 ${fmtMs(at.result.p99)} ${at.result.p99 <= CAPACITY_P99_MS ? `≤ ${CAPACITY_P99_MS} ms` : `: no load kept its p99 within ${CAPACITY_P99_MS} ms`})${named}`,
      goal: `≥ ${fmtInt(REFRESHES_PER_VCPU_TARGET)}`,
      value: refreshes,
      display: fmtNum(refreshes, 1),
      pass: refreshes >= REFRESHES_PER_VCPU_TARGET,
    });
  }
  const ceiling = sqlite.stackCeiling ? sqlite.stackCeiling.rps / vcpus : Infinity;
  if (ceiling < REFRESHES_PER_VCPU_TARGET) {
    const ratio = sqlite.refreshes!.rps / vcpus / ceiling;
    targets.push({
      id: 'capacity-stack',
      name: `refreshes/s vs the stack ceiling (SQLite, Express: the same route refusing a token at its signature, no database, answers ${fmtNum(ceiling, 1)}/s per vCPU)`,
      goal: `≥ ${fmtRatio(STACK_RATIO_TARGET)}`,
      value: ratio,
      display: fmtRatio(ratio),
      pass: ratio >= STACK_RATIO_TARGET,
    });
  }
  return targets;
}

/**
 * CPU profile (`node --cpu-prof`, main thread) of the sample app on SQLite under the loads whose
 * capacity target was missed, cut to each load window with the app's monotonic clock.
 */
export async function profileCapacity(
  dir: string,
  options: BenchOptions,
  loads: { logins: boolean; refreshes: boolean },
): Promise<ProfileSection[]> {
  const profileDir = join(dir, 'profile-capacity');
  mkdirSync(profileDir, { recursive: true });
  const db = await createDatabase('sqlite', 'tfa_bench_profile', dir, {
    postgres: options.postgresUrl,
    mariadb: options.mariadbUrl,
  });
  if ('unavailable' in db) throw new Error(db.unavailable);
  const app = await SampleApp.start('profile-capacity', {
    databaseUrl: db.url,
    dir,
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  const windows: { label: string; from: number; to: number; requests: number }[] = [];
  let from = 0;
  try {
    await measureApp(app, options, loads, async (label, edge, requests) => {
      const at = await app.mark();
      if (edge === 'start') from = at;
      else windows.push({ label, from, to: at, requests: requests ?? 0 });
    });
  } finally {
    await app.stop();
  }
  const file = findProfile(profileDir);
  return windows.map((w) => ({
    title: `sample app on SQLite, ${options.capacityClients} closed-loop clients on ${w.label}, ${options.capacityDuration} s, main thread, per request`,
    summaries: [{ label: w.label, summary: summariseProfile(file, w.requests, w.from, w.to) }],
    unit: 'request',
  }));
}
