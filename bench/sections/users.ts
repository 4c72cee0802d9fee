/**
 * Many users, not one: the guarded route of the two-factor fixture with many distinct live
 * tokens. Warm: 10,000 tokens (the verifier's default cache size), each request taking the next
 * one round-robin, after every token has been seen once. First sight: every request carries a
 * token the server has never seen (signature, claims and one database read, then cached).
 * Tokens are made in the runner: rows inserted into the fixture's SQLite file as TokenIssuer
 * writes them (bench/support/seed.ts), signed with the fixture's own key.
 */
import { KeyRing } from '../../lib/core/keys/key-ring.js';
import { ACCESS_TOKEN_TYP } from '../../lib/index.js';
import { hammer, type HammerOptions, type LoadResult } from '../support/load.js';
import type { BenchOptions } from '../support/options.js';
import type { BenchReport, Series, UsersSection } from '../support/results.js';
import { seedAccessTokens } from '../support/seed.js';
import { fmtInt, fmtMs, sleep } from '../support/stats.js';
import { startTwoFactor, type TwoFactorFixture } from '../support/two-factor.js';

const log = (line: string) => console.log(line);

/** Live access tokens of the fixture's account: rows in its database, signed with its key. */
function mintTokens(
  target: TwoFactorFixture,
  count: number,
): { tokens: string[]; seconds: number } {
  const started = Date.now();
  const ring = KeyRing.fromJwks([target.jwk]);
  const { claims } = seedAccessTokens(target.database, {
    accountId: target.fixture.info.accountId as string,
    issuer: target.fixture.info.issuer as string,
    kid: ring.signer.kid,
    count,
  });
  const tokens = claims.map((c) => ring.sign(ACCESS_TOKEN_TYP, { ...c }));
  return { tokens, seconds: (Date.now() - started) / 1000 };
}

/** `Bearer` headers taking tokens in order, wrapping around at the end. */
function roundRobin(tokens: string[]) {
  let next = 0;
  return {
    reset: () => (next = 0),
    headers: () => ({ authorization: `Bearer ${tokens[next++ % tokens.length]}` }),
  };
}

export async function runUsers(dir: string, options: BenchOptions, report: BenchReport) {
  const connections = options.connections;
  log(
    `\nMany users: ${fmtInt(options.usersTokens)} distinct live tokens round-robin, and a new token per request; autocannon -c ${connections}`,
  );
  const target = await startTwoFactor('users', dir, 'ES256');
  const { fixture } = target;
  try {
    const live = mintTokens(target, options.usersTokens);
    log(`  ${fmtInt(live.tokens.length)} live tokens made in ${live.seconds.toFixed(1)} s`);
    const warmTokens = roundRobin(live.tokens);
    const open = fixture.url('/open');
    const guarded = fixture.url('/guarded');
    const load = (
      url: string,
      headersFor: () => Record<string, string>,
      extra: Partial<HammerOptions>,
    ) => hammer(url, { connections, duration: options.duration, headersFor, ...extra });

    // Every token once (plus a margin: autocannon builds each connection's next request
    // before it knows whether it will be sent), so that the verifier has seen them all.
    const pass = async () => {
      warmTokens.reset();
      return load(guarded, warmTokens.headers, { amount: live.tokens.length + 2 * connections });
    };
    const firstPass = await pass();
    const cachedAfterWarm = (await fixture.stats()).verifiedCached ?? Number.NaN;
    log(
      `  first pass over the tokens: ${fmtInt(firstPass.rps)} req/s; ${fmtInt(cachedAfterWarm)} tokens in the verifier's cache`,
    );
    // Warm-up of the open and warm-guarded runs, which also sizes the first-sight pool: no
    // run can go faster than the open route (autocannon stops up to 1 s after `duration`).
    const openWarm = await load(open, warmTokens.headers, { duration: options.warmup });
    const guardedWarm = await load(guarded, warmTokens.headers, { duration: options.warmup });
    const fastest = Math.max(openWarm.rps, guardedWarm.rps, firstPass.rps);
    const perRun = (seconds: number) => Math.ceil(fastest * (seconds + 1.2) * 1.25);
    const needed = perRun(options.warmup) + options.rounds * perRun(options.duration);
    const fresh = mintTokens(target, needed);
    log(`  ${fmtInt(needed)} first-sight tokens made in ${fresh.seconds.toFixed(1)} s`);
    let nextFresh = 0;
    let reused = 0;
    const freshHeaders = () => {
      if (nextFresh >= fresh.tokens.length) reused++;
      return { authorization: `Bearer ${fresh.tokens[nextFresh++ % fresh.tokens.length]}` };
    };
    await load(guarded, freshHeaders, { duration: options.warmup });

    const runs: Record<'open' | 'warm' | 'first', LoadResult[]> = { open: [], warm: [], first: [] };
    const variants: {
      id: 'open' | 'warm' | 'first';
      label: string;
      run: () => Promise<LoadResult>;
    }[] = [
      {
        id: 'open',
        label: 'unguarded GET /open (same headers)',
        run: () => load(open, warmTokens.headers, {}),
      },
      {
        id: 'warm',
        label: `guarded, ${fmtInt(live.tokens.length)} tokens round-robin (warm)`,
        // A first-sight run fills the cache with its own tokens: see every warm token again.
        run: async () => {
          await pass();
          return load(guarded, warmTokens.headers, {});
        },
      },
      {
        id: 'first',
        label: 'guarded, a new token per request (first sight)',
        run: () => load(guarded, freshHeaders, {}),
      },
    ];
    for (let round = 0; round < options.rounds; round++) {
      const shift = round % variants.length;
      for (const v of [...variants.slice(shift), ...variants.slice(0, shift)]) {
        await sleep(250);
        const result = await v.run();
        runs[v.id].push(result);
        log(
          `  round ${round + 1}/${options.rounds}  ${v.label.padEnd(48)} ${fmtInt(result.rps).padStart(8)} req/s  p50 ${fmtMs(result.p50)}  p99 ${fmtMs(result.p99)}`,
        );
      }
    }
    if (reused > 0)
      log(`  (the first-sight pool ran out: ${fmtInt(reused)} requests re-used a token)`);
    const series = (id: 'open' | 'warm' | 'first', label: string, openId?: string): Series => ({
      id: `users.${id}`,
      label,
      ...(openId ? { openId } : {}),
      runs: runs[id],
    });
    const users: UsersSection = {
      tokens: live.tokens.length,
      cachedAfterWarm,
      connections,
      firstSightTokens: fresh.tokens.length,
      seedSeconds: live.seconds + fresh.seconds,
      reused,
      open: series('open', variants[0].label),
      warm: series('warm', variants[1].label, 'users.open'),
      firstSight: series('first', variants[2].label, 'users.open'),
    };
    report.users = users;
  } finally {
    await fixture.stop();
  }
}
