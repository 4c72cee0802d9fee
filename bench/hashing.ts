/**
 * The machine's argon2 hashing limit, in a process of its own (forked by the capacity section,
 * or alone: `node dist/bench/hashing.js`): `@node-rs/argon2` `verify` of one password hash made
 * at the module's default parameters (`TWO_FACTOR_AUTH_DEFAULTS.password` of dist/lib), with
 * `availableParallelism()` calls in flight, then with the module's default `password.concurrency`
 * calls in flight. A login verifies one such hash, so no login path can beat this rate.
 * Env: BENCH_HASHING_MS (ms per measurement). Sends `{ results }` over IPC, or prints them.
 */
import * as argon2 from '@node-rs/argon2';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { TWO_FACTOR_AUTH_DEFAULTS } from '../lib/index.js';
import type { HashingLimit } from './support/results.js';

// `Algorithm` and `Version` are ambient const enums, which isolated modules cannot read.
const ARGON2ID = 2 as argon2.Algorithm;
const VERSION_19 = 1 as argon2.Version;

/** Verifies per second with `inFlight` concurrent calls, over `ms` after a short warm-up. */
async function verifiesPerSecond(hash: string, password: string, inFlight: number, ms: number) {
  const loop = async (until: number) => {
    let done = 0;
    while (performance.now() < until) {
      if (!(await argon2.verify(hash, password))) throw new Error('argon2 refused its own hash');
      done++;
    }
    return done;
  };
  const warm = performance.now() + Math.min(500, ms / 4);
  await Promise.all(Array.from({ length: inFlight }, () => loop(warm)));
  const start = performance.now();
  const counts = await Promise.all(Array.from({ length: inFlight }, () => loop(start + ms)));
  const seconds = (performance.now() - start) / 1000;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

export async function measureHashingLimit(ms: number): Promise<HashingLimit> {
  const { memoryCost, timeCost, parallelism, concurrency } = TWO_FACTOR_AUTH_DEFAULTS.password;
  const password = 'bench password, long enough';
  const hash = await argon2.hash(password, {
    algorithm: ARGON2ID,
    version: VERSION_19,
    memoryCost,
    timeCost,
    parallelism,
  });
  const threads = availableParallelism();
  const perSecond = await verifiesPerSecond(hash, password, threads, ms);
  const atDefaultConcurrency =
    concurrency === threads ? perSecond : await verifiesPerSecond(hash, password, concurrency, ms);
  return {
    memoryCost,
    timeCost,
    parallelism,
    threads,
    perSecond,
    perVcpu: perSecond / threads,
    defaultConcurrency: concurrency,
    atDefaultConcurrency,
    seconds: ms / 1000,
  };
}

const results = await measureHashingLimit(Number(process.env.BENCH_HASHING_MS ?? 5000));
if (process.send) process.send({ results }, () => process.exit(0));
else console.log(JSON.stringify(results, null, 2));
