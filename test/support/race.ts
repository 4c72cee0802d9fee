import type request from 'supertest';

/** Anything that answers HTTP like the sample app: an in-process app or a spawned one. */
export interface HttpTarget {
  http: () => ReturnType<typeof request>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `count` calls of `send` in the same tick and waits for every answer: a burst.
 * `send(i)` may pick the instance (`i % 2`) or the body by index. Each request is sent
 * (`.then`) as soon as it is built, so none waits for another to be built.
 */
export function burst<T>(count: number, send: (index: number) => PromiseLike<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => Promise.resolve(send(i))));
}

/** How many of `statuses` equal each status: `{ 401: 3, 429: 17 }`. */
export function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** What went wrong in one trial: each string names one broken promise of the contract. */
export type Violations = string[];

/** The failed trials of a trial loop, for one assertion that prints them all. */
export interface TrialReport {
  trials: number;
  failed: { trial: number; violations: Violations }[];
}

/**
 * Runs `trials` trials one after the other and collects their violations instead of stopping
 * at the first, so that a failing run says in how many trials (of how many) the contract
 * broke, and how. Pass the report to `expectNoViolations`. A trial that throws is a violation.
 */
export async function runTrials(
  trials: number,
  trial: (index: number) => Promise<Violations>,
): Promise<TrialReport> {
  const failed: TrialReport['failed'] = [];
  for (let index = 0; index < trials; index++) {
    let violations: Violations;
    try {
      violations = await trial(index);
    } catch (error) {
      violations = [`threw: ${(error as Error).message}`];
    }
    if (violations.length > 0) failed.push({ trial: index, violations });
  }
  return { trials, failed };
}

/** Fails, listing every failed trial and the count (`3/25 trials failed`), if any failed. */
export function expectNoViolations(report: TrialReport): void {
  const summary = `${report.failed.length}/${report.trials} trials failed`;
  expect({ summary, failed: report.failed }).toEqual({
    summary: `0/${report.trials} trials failed`,
    failed: [],
  });
}

/**
 * Collects violations within one trial: `check(cond, what)` records `what` when `cond` is
 * false, and `violations` is what the trial returns.
 */
export function violationCollector(): {
  check: (condition: boolean, what: string) => void;
  violations: Violations;
} {
  const violations: Violations = [];
  return {
    violations,
    check: (condition, what) => {
      if (!condition) violations.push(what);
    },
  };
}

/** Status of `GET /me` with `token` as Bearer. */
export async function meStatus(target: HttpTarget, token: string): Promise<number> {
  return (await target.http().get('/me').set('Authorization', `Bearer ${token}`)).status;
}

/** Status of `POST /auth/refresh` with `refreshToken`, and the new pair when it is 200. */
export async function refreshAt(
  target: HttpTarget,
  refreshToken: string,
): Promise<{ status: number; pair?: { access_token: string; refresh_token: string } }> {
  const res = await target.http().post('/auth/refresh').send({ refresh_token: refreshToken });
  return res.status === 200 ? { status: 200, pair: res.body } : { status: res.status };
}

/**
 * Polls `probe` every 50 ms until it returns true; whether a probe that started within
 * `boundMs` of `since` saw it hold.
 */
export async function holdsWithin(
  probe: () => Promise<boolean>,
  since: number,
  boundMs: number,
): Promise<boolean> {
  for (;;) {
    const startedAt = Date.now();
    if (await probe()) return startedAt - since <= boundMs;
    if (startedAt - since > boundMs) return false;
    await sleep(50);
  }
}
