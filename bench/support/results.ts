import type { MicroResults } from '../micro.js';
import type { LoadResult, ProbeResult } from './load.js';
import type { ProfileSummary } from './profile.js';
import type { ThreadCpu } from './sample-app.js';
import { median } from './stats.js';

/** One route of one fixture, measured once per round. */
export interface Series {
  id: string;
  label: string;
  /** The unguarded route of the same fixture (ratios are taken per round against it). */
  openId?: string;
  runs: LoadResult[];
}

export interface HttpSection {
  series: Series[];
}

export interface FloodRound {
  /** The open-loop probe on the guarded route, idle and during the storm. */
  idle: ProbeResult;
  busy: ProbeResult;
  /** Closed-loop throughput of the guarded route, idle and during the storm. */
  idleThroughput: LoadResult;
  busyThroughput: LoadResult;
  /** The storm, as its own process measured it. */
  logins: LoadResult;
  idleLoopDelayP99: number;
  busyLoopDelayP99: number;
}

export interface FloodSection {
  probeRate: number;
  floodConnections: number;
  hammerConnections: number;
  /** The least p99 limit during the storm, ms (FLOOD_P99_FLOOR_MS). */
  floorMs: number;
  rounds: FloodRound[];
}

/** One database of the capacity section. */
export interface CapacityDatabase {
  kind: 'sqlite' | 'postgres' | 'mariadb';
  /** The sample app's HTTP adapter (`HTTP_ADAPTER`); Express unless said. */
  adapter: 'express' | 'fastify';
  label: string;
  version?: string;
  /** Why it was not measured (not reachable, …). */
  skipped?: string;
  logins?: LoadResult;
  refreshes?: LoadResult;
  /**
   * The HTTP stack's own ceiling on the refresh route: `POST /auth/refresh` with a well-formed
   * body whose token fails its signature check (401), the same clients. What the app answers
   * per second without touching the database: no refresh can be faster.
   */
  stackCeiling?: LoadResult;
  /** CPU time of the app's threads during each measured run, seconds. */
  loginsCpu?: ThreadCpu;
  refreshesCpu?: ThreadCpu;
  /** CPU time of the load generator (the bench runner's process) during each run, seconds. */
  loginsClientCpu?: number;
  refreshesClientCpu?: number;
  /**
   * The refresh load again with more clients (`capacityMoreClients`), each run with its CPU:
   * where the app's capacity is (`refreshCapacity`).
   */
  refreshSweep?: RefreshLoad[];
}

/** One refresh load of the capacity sweep. */
export interface RefreshLoad {
  clients: number;
  result: LoadResult;
  /** CPU time of the app's threads during the run, seconds. */
  cpu: ThreadCpu;
  /** CPU time of the load generator during the run, seconds. */
  clientCpu: number;
}

/** argon2 `verify` at the module's default parameters, in a process of its own. */
export interface HashingLimit {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
  /** Concurrent verify calls (availableParallelism()) and the verifies per second they made. */
  threads: number;
  perSecond: number;
  perVcpu: number;
  /** The same with the module's default `password.concurrency` calls at a time. */
  defaultConcurrency: number;
  atDefaultConcurrency: number;
  seconds: number;
}

export interface CapacitySection {
  vcpus: number;
  clients: number;
  duration: number;
  warmup: number;
  databases: CapacityDatabase[];
  hashing: HashingLimit;
}

export interface UsersSection {
  /** Distinct live tokens of the warm round, and how many the verifier held after warming. */
  tokens: number;
  cachedAfterWarm: number;
  connections: number;
  /** First-sight tokens made (rows + signatures) and how long that took. */
  firstSightTokens: number;
  seedSeconds: number;
  /** Requests of the first-sight rounds that had to re-use a token (the pool ran out). */
  reused: number;
  open: Series;
  warm: Series;
  firstSight: Series;
}

/** A reading of the sample app's memory. */
export interface MemoryReading {
  label: string;
  /** Seconds since the app was ready. */
  at: number;
  /** VmRSS, bytes. */
  rss: number;
  /** V8's committed heap (heapTotal) at the reading, before any forced GC, bytes. */
  heapTotal: number;
  /** Checkpoints only: V8 heapUsed after two full GCs, and VmRSS right after them, bytes. */
  heapUsed?: number;
  rssAfterGc?: number;
  /** Refresh rotations done so far (rotation run only). */
  rotations?: number;
}

export interface MemorySection {
  logins: number;
  loginSeconds: number;
  rotationSeconds: number;
  rotations: number;
  /** Rotations per second over the run. */
  rotationRate: number;
  idle: MemoryReading;
  afterLogins: MemoryReading;
  /** Sampled every few seconds during the rotation run (the last one at its end). */
  samples: MemoryReading[];
}

export interface ScaleFixture {
  name: string;
  rows: number;
  revoked: number;
  revokedInView: number;
  seedSeconds: number;
  heapBefore: number;
  heapAfter: number;
  open: Series;
  guarded: Series;
}

export interface ScaleSection {
  fixtures: ScaleFixture[];
}

export interface Target {
  id: string;
  name: string;
  goal: string;
  value: number;
  display: string;
  pass: boolean;
}

export interface ProfileSection {
  /** What was profiled, and the summaries of its windows. */
  title: string;
  summaries: { label: string; summary: ProfileSummary }[];
  /** Per-request diff between two windows (`a` minus `b`), when given. */
  diff?: { a: string; b: string };
  unit: string;
}

export interface Diagnostic {
  title: string;
  lines: string[];
}

export interface BenchReport {
  startedAt: Date;
  finishedAt?: Date;
  command: string;
  mode: string;
  rounds: number;
  duration: number;
  connections: number;
  loadBefore: number[];
  loadAfter?: number[];
  micro?: MicroResults;
  http?: HttpSection;
  flood?: FloodSection;
  scale?: ScaleSection;
  capacity?: CapacitySection;
  users?: UsersSection;
  memory?: MemorySection;
  targets: Target[];
  profiles: ProfileSection[];
  diagnostics: Diagnostic[];
}

export function seriesById(http: HttpSection, id: string): Series {
  const found = http.series.find((s) => s.id === id);
  if (!found) throw new Error(`no series ${id}`);
  return found;
}

/** Per-round ratios of req/s, `a` over `b` (same round), and their median. */
export function roundRatios(a: Series, b: Series): { perRound: number[]; median: number } {
  const perRound = a.runs.map((run, i) => run.rps / (b.runs[i]?.rps ?? Number.NaN));
  return { perRound, median: median(perRound) };
}

export function medianOf(series: Series, field: keyof LoadResult): number {
  return median(series.runs.map((r) => r[field]));
}
