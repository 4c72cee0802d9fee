/**
 * A failed login costs the same whatever failed: an unknown username, a wrong password and a
 * wrong secret key all pay for one password hash verification, so the response time tells an
 * attacker nothing (DESIGN.md, Security rules). A locked username is refused before any factor
 * is evaluated (a refused guess is not worth a hash: see docs/DECISIONS.md), and a locked
 * unknown username exactly as fast as a locked real one, so the lock tells nothing either.
 * Compared as medians of interleaved samples, relative to each other within each answer
 * (401, 429), with a tolerance that holds on a loaded 2-core machine but not when one case
 * skips the hash (a hash costs tens of ms, a skipped one under 1 ms).
 *
 * Runs on SQLite only: the cost being compared is the password hash, not the queries.
 */
import { performance } from 'node:perf_hooks';
import {
  createSuiteEnvironment,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

const SAMPLES = 15;
const WARM_UP = 3;
/** Lockout threshold: above the failures each measured account collects, except the locked one. */
const MAX_ATTEMPTS = SAMPLES + WARM_UP + 2;
/** Each median within 40% (of the larger) or 15 ms of every other, whichever is larger. */
const RELATIVE_TOLERANCE = 0.4;
const ABSOLUTE_TOLERANCE_MS = 15;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

describe('login timing does not tell failures apart (SQLite)', () => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      LOCKOUT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOCKOUT_SECONDS: '900',
    });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('answers an unknown user, a wrong password and a wrong secret key in the same time, and a locked real or unknown user in the same time', async () => {
    const wrongPassword = await signUp(running);
    const wrongKey = await signUp(running);
    const locked = await signUp(running);
    const lockedGhost = { ...pick(locked), username: `locked-ghost-${Date.now()}` };
    const post = (body: object) => running.http().post('/auth/token').send(body);
    for (const target of [pick(locked), lockedGhost]) {
      for (let i = 0; i < MAX_ATTEMPTS; i++) {
        await post({ ...target, password: 'wrong password!' }).expect(401);
      }
      await post(target).expect(429);
    }

    let ghost = 0;
    const cases: Record<string, { body: () => object; status: number }> = {
      'unknown user': {
        // A fresh unknown name each time (and one that never locks).
        body: () => ({ ...pick(wrongPassword), username: `ghost-${ghost++}-${Date.now()}` }),
        status: 401,
      },
      'wrong password': {
        body: () => ({ ...pick(wrongPassword), password: 'wrong password!' }),
        status: 401,
      },
      'wrong secret key': {
        body: () => ({ ...pick(wrongKey), secretKey: pick(locked).secretKey }),
        status: 401,
      },
      // Correct credentials: the lock alone refuses them.
      'locked account': { body: () => pick(locked), status: 429 },
      'locked unknown user': { body: () => lockedGhost, status: 429 },
    };
    const names = Object.keys(cases);
    const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));

    for (let round = 0; round < WARM_UP + SAMPLES; round++) {
      for (const name of shuffle(names)) {
        const { body, status } = cases[name];
        const started = performance.now();
        const res = await post(body());
        const elapsed = performance.now() - started;
        expect({ name, status: res.status }).toEqual({ name, status });
        if (round >= WARM_UP) samples[name].push(elapsed);
      }
    }

    const medians = Object.fromEntries(names.map((n) => [n, median(samples[n])]));
    const outliers: string[] = [];
    for (const a of names) {
      for (const b of names) {
        if (a >= b || cases[a].status !== cases[b].status) continue;
        const [x, y] = [medians[a], medians[b]];
        const allowed = Math.max(RELATIVE_TOLERANCE * Math.max(x, y), ABSOLUTE_TOLERANCE_MS);
        if (Math.abs(x - y) > allowed) {
          outliers.push(`${a} ${x.toFixed(1)} ms vs ${b} ${y.toFixed(1)} ms`);
        }
      }
    }
    expect({ medians, outliers }).toEqual({ medians, outliers: [] });
    // The hash really runs: a failed login is not answered in a couple of milliseconds.
    for (const name of names.filter((n) => cases[n].status === 401)) {
      expect(medians[name]).toBeGreaterThan(5);
    }
  }, 120000);
});

function pick({ username, password, secretKey }: Record<string, string>) {
  return { username, password, secretKey };
}
