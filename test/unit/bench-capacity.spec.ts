import {
  CAPACITY_P99_MS,
  capacityTargets,
  refreshCapacity,
} from '../../bench/sections/capacity.js';
import type { LoadResult } from '../../bench/support/load.js';
import { capacitySection } from '../../bench/support/report.js';
import type { BenchReport, CapacityDatabase } from '../../bench/support/results.js';

const load = (rps: number, p99: number): LoadResult => ({
  rps,
  p50: p99 / 3,
  p99,
  requests: rps * 10,
  seconds: 10,
});
const cpu = (seconds: number) => ({ eventLoop: seconds, niced: 0, other: seconds / 2 });

function sqlite(
  base: LoadResult,
  more: { clients: number; result: LoadResult }[],
  adapter: 'express' | 'fastify' = 'express',
): CapacityDatabase {
  return {
    kind: 'sqlite',
    adapter,
    label: adapter === 'express' ? 'SQLite' : 'SQLite (Fastify)',
    logins: load(150, 60),
    refreshes: base,
    refreshesCpu: cpu(5),
    refreshesClientCpu: 0.3,
    refreshSweep: more.map((m) => ({ ...m, cpu: cpu(6), clientCpu: 0.3 })),
  };
}

function report(databases: CapacityDatabase[]): BenchReport {
  return {
    capacity: {
      vcpus: 2,
      clients: 8,
      duration: 10,
      warmup: 1,
      databases,
      hashing: { perVcpu: 110, perSecond: 220 } as never,
    },
  } as unknown as BenchReport;
}

describe('bench capacity: refreshes read at capacity', () => {
  it('takes the load that served the most within the p99 bound, not the most at any latency', () => {
    const d = sqlite(load(1700, 12), [
      { clients: 16, result: load(2050, 17) },
      { clients: 32, result: load(2150, CAPACITY_P99_MS + 1) },
    ]);
    const at = refreshCapacity(d, 8);
    expect(at?.clients).toBe(16);
    expect(at?.result.rps).toBe(2050);
  });

  it('falls back to the base load when no load kept its p99 within the bound', () => {
    const d = sqlite(load(900, CAPACITY_P99_MS + 10), [
      { clients: 16, result: load(1200, CAPACITY_P99_MS + 20) },
    ]);
    expect(refreshCapacity(d, 8)?.clients).toBe(8);
    const target = capacityTargets(report([d])).find((t) => t.id === 'capacity-refreshes')!;
    expect(target.name).toContain(`no load kept its p99 within ${CAPACITY_P99_MS} ms`);
    expect(target.name).not.toContain('≤');
  });

  it('judges the refresh targets at capacity and names the load in the target', () => {
    const targets = capacityTargets(
      report([
        sqlite(load(1700, 12), [{ clients: 32, result: load(2100, 30) }]),
        sqlite(load(1900, 12), [{ clients: 32, result: load(1950, 30) }], 'fastify'),
      ]),
    );
    const express = targets.find((t) => t.id === 'capacity-refreshes')!;
    expect(express.value).toBe(1050);
    expect(express.pass).toBe(true);
    expect(express.name).toContain('32 clients');
    const fastify = targets.find((t) => t.id === 'capacity-refreshes-fastify')!;
    expect(fastify.value).toBe(975);
    expect(fastify.pass).toBe(false);
  });

  it('marks exactly one load per database as its capacity in the report, the base load included', () => {
    // The base (8-client) load is the capacity when more clients only add latency: the mark
    // must not depend on which list object the row came from.
    const text = capacitySection(
      report([
        sqlite(load(1700, 12), [{ clients: 32, result: load(1600, CAPACITY_P99_MS + 5) }]),
        sqlite(load(1900, 12), [{ clients: 32, result: load(2300, 30) }], 'fastify'),
      ]),
    );
    const marked = (label: string) =>
      text
        .split('\n')
        .filter((line) => line.split('|')[1]?.trim() === label && line.includes('**capacity**'));
    expect(marked('SQLite').map((line) => line.split('|')[2].trim())).toEqual(['8']);
    expect(marked('SQLite (Fastify)').map((line) => line.split('|')[2].trim())).toEqual(['32']);
    expect(text).toMatch(/\| SQLite +\| +32 \|.*p99 too high/);
  });
});
