/**
 * Memory of the sample app on SQLite: resident set size (VmRSS of /proc/<pid>/status) idle
 * after start, after N successful logins, and every few seconds during a run of refresh
 * rotations, with the V8 heap after full GCs at each checkpoint. A straight line fitted to the
 * second half of the rotation run gives the growth per 100,000 rotations, and from the measured
 * rate, what an hour of rotations would add if it went on growing the same way (a projection).
 */
import { performance } from 'node:perf_hooks';
import { createDatabase } from '../support/databases.js';
import type { BenchOptions } from '../support/options.js';
import type { BenchReport, MemoryReading, MemorySection } from '../support/results.js';
import { SampleApp } from '../support/sample-app.js';
import { fmtBytes, fmtInt, fmtNum, sleep } from '../support/stats.js';
import { loginLoad, refreshChains } from './capacity.js';

const log = (line: string) => console.log(line);

/** Least-squares slope of `y` over `x` (NaN with fewer than two distinct x). */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}

/**
 * Growth per rotation from the half-way checkpoint (full GCs) to the end of the run, of RSS
 * after GCs and of V8's heap in use after GCs (retained objects).
 */
export function retainedPerRotation(memory: MemorySection): { rss: number; heap: number } {
  const end = memory.samples.at(-1)!;
  const from = memory.samples.find((s) => s !== end && s.heapUsed !== undefined) ?? {
    ...memory.afterLogins,
    rotations: 0,
  };
  const rotations = (end.rotations ?? 0) - (from.rotations ?? 0);
  return {
    rss: (end.rssAfterGc! - from.rssAfterGc!) / rotations,
    heap: (end.heapUsed! - from.heapUsed!) / rotations,
  };
}

/** RSS growth per rotation over the second half of the run (after its start-up transients). */
export function growthPerRotation(memory: MemorySection): number {
  const half = memory.rotations / 2;
  const late = memory.samples.filter((s) => (s.rotations ?? 0) >= half);
  const points = (late.length >= 3 ? late : memory.samples).map((s) => ({
    x: s.rotations ?? 0,
    y: s.rss,
  }));
  return slope(points);
}

export async function runMemory(dir: string, options: BenchOptions, report: BenchReport) {
  log(
    `\nMemory: the sample app on SQLite, idle, after ${fmtInt(options.memoryLogins)} logins, during ${options.memoryRotationSeconds} s of refresh rotations`,
  );
  const db = await createDatabase('sqlite', 'tfa_bench_memory', dir, {
    postgres: options.postgresUrl,
    mariadb: options.mariadbUrl,
  });
  if ('unavailable' in db) throw new Error(db.unavailable);
  const app = await SampleApp.start('memory', { databaseUrl: db.url, dir });
  const ready = performance.now();
  const at = () => (performance.now() - ready) / 1000;
  // A checkpoint: RSS and V8's committed heap as they are, then both again after full GCs.
  const reading = async (label: string, rotations?: number): Promise<MemoryReading> => {
    const rss = app.rss();
    const { heapTotal } = await app.memory();
    const { heapUsed } = await app.memory(true);
    return {
      label,
      at: at(),
      rss,
      heapTotal,
      heapUsed,
      rssAfterGc: app.rss(),
      ...(rotations !== undefined ? { rotations } : {}),
    };
  };
  try {
    await sleep(2000);
    const idle = await reading('idle, after start');
    log(`  idle: RSS ${fmtBytes(idle.rss)}, heap after GC ${fmtBytes(idle.heapUsed!)}`);

    const accounts = await app.createAccounts(options.capacityClients);
    let logins = 0;
    const started = performance.now();
    await loginLoad(app, accounts, { until: () => logins >= options.memoryLogins }, () => logins++);
    const loginSeconds = (performance.now() - started) / 1000;
    const afterLogins = await reading(`after ${fmtInt(logins)} logins`);
    log(
      `  after ${fmtInt(logins)} logins (${fmtNum(loginSeconds, 1)} s): RSS ${fmtBytes(afterLogins.rss)}, heap after GC ${fmtBytes(afterLogins.heapUsed!)}`,
    );

    const chains = await refreshChains(app, accounts);
    const samples: MemoryReading[] = [];
    let rotations = 0;
    let running = true;
    // Every few seconds RSS and V8's committed heap; once, half-way, a checkpoint with full
    // GCs, so that retained memory is compared over the second half only (after the step
    // the heap takes when the load starts).
    let midway = false;
    const sampler = (async () => {
      const t0 = performance.now();
      while (running) {
        await sleep(options.memorySampleSeconds * 1000);
        if (!running) break;
        if (!midway && performance.now() - t0 >= (options.memoryRotationSeconds * 1000) / 2) {
          midway = true;
          samples.push(await reading('half-way (full GCs)', rotations));
          continue;
        }
        const rss = app.rss();
        const { heapTotal } = await app.memory();
        samples.push({
          label: `${fmtNum((performance.now() - t0) / 1000, 1)} s of rotations`,
          at: at(),
          rss,
          heapTotal,
          rotations,
        });
      }
    })();
    const rotationStart = performance.now();
    const rotated = await chains.run(options.memoryRotationSeconds, () => rotations++);
    const rotationSeconds = (performance.now() - rotationStart) / 1000;
    running = false;
    await sampler;
    samples.push(await reading('end of the rotation run', rotated.requests));
    const memory: MemorySection = {
      logins,
      loginSeconds,
      rotationSeconds,
      rotations: rotated.requests,
      rotationRate: rotated.requests / rotationSeconds,
      idle,
      afterLogins,
      samples,
    };
    const perRotation = growthPerRotation(memory);
    log(
      `  ${fmtInt(memory.rotations)} rotations (${fmtNum(memory.rotationRate, 0)}/s): RSS ${fmtBytes(samples.at(-1)!.rss)}; ${fmtBytes(perRotation * 100_000)} per 100k rotations (fit over the second half)`,
    );
    report.memory = memory;
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- sample app output ---\n${app.recentOutput}`, {
      cause: error,
    });
  } finally {
    await app.stop();
    await db.drop();
  }
}
