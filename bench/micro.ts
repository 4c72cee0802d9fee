/**
 * Micro-benchmarks, run in their own process by bench/run.ts (or alone:
 * `node dist/bench/micro.js`): KeyRing sign and verify per algorithm, and the revocation check
 * (RevocationView.isRevoked, AccessTokenVerifier.decide) with small and large views.
 * Env: BENCH_MICRO_MS (ms per sample, 3 samples, median), BENCH_MICRO_REVOKED (large view size).
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { KeyRing } from '../lib/core/keys/key-ring.js';
import { AccessTokenVerifier } from '../lib/core/tokens/access-token.verifier.js';
import { TokenRecords, type LiveRecord } from '../lib/core/tokens/token-records.js';
import { RevocationView } from '../lib/core/revocation/revocation-view.service.js';
import type { RevocationLog } from '../lib/core/revocation/revocation-log.service.js';
import { resolveTwoFactorAuthOptions } from '../lib/core/options/two-factor-auth.options-validation.js';
import { ACCESS_TOKEN_TYP, type TwoFactorJwsAlgorithm } from '../lib/index.js';
import { ALL_ALGORITHMS, generateJwk } from './support/keys.js';
import { fmtInt, median, table } from './support/stats.js';

export interface MicroResults {
  sampleMs: number;
  algorithms: { alg: TwoFactorJwsAlgorithm; sign: number; verify: number; tokenBytes: number }[];
  revocation: { name: string; ops: number }[];
}

let sink: unknown;
/** Keeps the benchmarked calls' results observable, so that none is optimised away. */
export const lastResult = () => sink;

/** Calls per second of `fn`: a short warm-up, then three timed samples of `ms`; the median. */
function opsPerSecond(fn: () => unknown, ms: number): number {
  let batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) sink = fn();
    if (performance.now() - t0 >= 0.5 || batch >= 1 << 20) break;
    batch *= 2;
  }
  const warmEnd = performance.now() + ms * 0.2;
  while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) sink = fn();
  const samples: number[] = [];
  for (let s = 0; s < 3; s++) {
    let calls = 0;
    const t0 = performance.now();
    let elapsed: number;
    do {
      for (let i = 0; i < batch; i++) sink = fn();
      calls += batch;
      elapsed = performance.now() - t0;
    } while (elapsed < ms);
    samples.push((calls / elapsed) * 1000);
  }
  return median(samples);
}

const ISSUER = 'https://bench.nestjs-rest-2fa.test';

function claims() {
  const iat = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, sub: randomUUID(), iat, nbf: iat, exp: iat + 3600, jti: randomUUID() };
}

function benchAlgorithms(ms: number): MicroResults['algorithms'] {
  // The first figures would otherwise include the JIT warming up the shared code paths.
  const warm = KeyRing.fromJwks([generateJwk('HS256', 'warm-up')]);
  const warmToken = warm.sign(ACCESS_TOKEN_TYP, claims());
  opsPerSecond(() => warm.verify(warmToken, ACCESS_TOKEN_TYP), ms);
  return ALL_ALGORITHMS.map((alg) => {
    const ring = KeyRing.fromJwks([generateJwk(alg)]);
    const payload = claims();
    const token = ring.sign(ACCESS_TOKEN_TYP, payload);
    if (!ring.verify(token, ACCESS_TOKEN_TYP)) throw new Error(`${alg}: own token refused`);
    return {
      alg,
      sign: opsPerSecond(() => ring.sign(ACCESS_TOKEN_TYP, payload), ms),
      verify: opsPerSecond(() => ring.verify(token, ACCESS_TOKEN_TYP), ms),
      tokenBytes: token.length,
    };
  });
}

/**
 * The real RevocationView and AccessTokenVerifier over stand-in token records: the view's sync
 * finds nothing new, and the token's record is "found" once, on first sight, as in the app.
 */
async function benchRevocation(ms: number, largeView: number): Promise<MicroResults['revocation']> {
  const jwk = generateJwk('ES256');
  const options = resolveTwoFactorAuthOptions({
    issuer: ISSUER,
    keys: [jwk],
    revocation: { syncInterval: 600_000, maxStaleness: 3_600_000 },
  });
  const ring = KeyRing.fromJwks([jwk]);
  const payload = claims();
  const token = ring.sign(ACCESS_TOKEN_TYP, payload);
  // The record "found" on first sight, as the app's one query returns it.
  const live: LiveRecord = {
    familyId: randomUUID(),
    aud: null,
    account: {
      id: payload.sub,
      username: 'bench-user',
      disabled: false,
      tokensValidAfter: 0,
      tokenEpoch: 0,
    },
  };
  const records = { live: async () => live } as unknown as TokenRecords;
  const log = {
    now: async () => Date.now(),
    since: async () => ({ tokens: [], accounts: [] }),
  } as unknown as RevocationLog;

  const results: MicroResults['revocation'] = [];
  for (const size of [10, largeView]) {
    const view = new RevocationView(log, options, null);
    await view.sync();
    const exp = payload.exp;
    await view.publish({
      tokens: Array.from({ length: size }, (): [string, number] => [randomUUID(), exp]),
      accounts: [],
    });
    const verifier = new AccessTokenVerifier(options, ring, view, records);
    const first = await verifier.decide(token);
    if (first.outcome !== 'accepted' || verifier.decide(token) !== first) {
      throw new Error('the stand-in verifier did not accept its token');
    }
    const label = `${size.toLocaleString('en-US')} revoked in view`;
    results.push({
      name: `RevocationView.isRevoked (not revoked), ${label}`,
      ops: opsPerSecond(() => view.isRevoked(payload.jti, payload.sub, payload.iat), ms),
    });
    results.push({
      name: `AccessTokenVerifier.decide (known token), ${label}`,
      ops: opsPerSecond(() => verifier.decide(token), ms),
    });
  }
  return results;
}

export async function runMicro(ms: number, largeView: number): Promise<MicroResults> {
  return {
    sampleMs: ms,
    algorithms: benchAlgorithms(ms),
    revocation: await benchRevocation(ms, largeView),
  };
}

export function microTables(results: MicroResults): string {
  const algorithms = table(
    ['algorithm', 'sign ops/s', 'verify ops/s', 'token bytes'],
    results.algorithms.map((r) => [r.alg, fmtInt(r.sign), fmtInt(r.verify), String(r.tokenBytes)]),
  );
  const revocation = table(
    ['revocation check', 'ops/s'],
    results.revocation.map((r) => [r.name, fmtInt(r.ops)]),
  );
  return `${algorithms}\n\n${revocation}`;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isMain) {
  const ms = Number(process.env.BENCH_MICRO_MS ?? 500);
  const largeView = Number(process.env.BENCH_MICRO_REVOKED ?? 100_000);
  runMicro(ms, largeView).then(
    (results) => {
      if (process.send) process.send({ type: 'micro', results }, () => process.exit(0));
      else console.log(microTables(results));
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
