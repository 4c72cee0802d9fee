import type { MicroResults } from '../micro.js';
import type { LoadResult, ProbeResult } from './load.js';
import type { ProfileSummary } from './profile.js';
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
  idle: ProbeResult;
  busy: ProbeResult;
  logins: LoadResult;
  idleLoopDelayP99: number;
  busyLoopDelayP99: number;
}

export interface FloodSection {
  probeRate: number;
  floodConnections: number;
  rounds: FloodRound[];
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
