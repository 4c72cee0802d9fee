/**
 * The lockout under bursts of parallel guesses (LOCKOUT_MAX_ATTEMPTS=3): a place is taken in
 * SQL before any hash, so however many guesses arrive at once, at most three wrong ones are
 * evaluated per window, the rest answer 429, and the burst leaves the account locked. A right
 * guess inside a burst may win only within the allowance and never lifts the lock. A burst of
 * right logins takes turns at the places: every one succeeds and nothing locks. Guesses
 * against a re-authentication route count toward the same lock.
 *
 * Runs on every available database with one instance, and for PostgreSQL and MariaDB also with
 * two instances on one database (an in-process app and a spawned one, each its own process's
 * strategies), the requests of each burst split between them. Each case is many rounds, each
 * on a fresh account; a round's violations are collected so that a failure says in how many
 * rounds the contract broke.
 */
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import {
  burst,
  expectNoViolations,
  runTrials,
  tally,
  violationCollector,
  type HttpTarget,
} from '../support/race.js';
import { databases, type DatabaseKind } from '../support/servers.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

const MAX_ATTEMPTS = 3;
const BURST = 20;
const ROUNDS = 10;
const WRONG_PASSWORD = 'not the password at all';

type Mode = 'one instance' | 'two instances';

const configurations = databases().flatMap((kind): [DatabaseKind, Mode][] =>
  kind === 'sqlite'
    ? [[kind, 'one instance']]
    : [
        [kind, 'one instance'],
        [kind, 'two instances'],
      ],
);

type Credentials = { username: string; password: string; secretKey: string };

function login(target: HttpTarget, { username, password, secretKey }: Credentials) {
  return target.http().post('/auth/token').send({ username, password, secretKey });
}

function rotateKey(target: HttpTarget, accessToken: string, body: object) {
  return target
    .http()
    .post('/me/secret-key')
    .set('Authorization', `Bearer ${accessToken}`)
    .send(body);
}

describe.each(configurations)('lockout under concurrency on %s, %s', (kind, mode) => {
  let suite: SuiteEnvironment;
  let a: RunningApp;
  let spawned: SpawnedApp | undefined;
  /** The instance that serves request `i` of a burst. */
  let at: (i: number) => HttpTarget;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      LOCKOUT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOCKOUT_SECONDS: '120',
    });
    a = await startSampleApp(suite.env);
    if (mode === 'two instances') spawned = await spawnSampleApp(suite.env);
    const targets: HttpTarget[] = spawned ? [a, spawned] : [a];
    at = (i) => targets[i % targets.length];
  }, 60_000);
  afterAll(async () => {
    await spawned?.stop();
    await a?.close();
    await suite?.cleanup();
  });

  /** Records a violation unless the right credentials now answer 429 with a Retry-After. */
  async function checkLocked(
    check: (condition: boolean, what: string) => void,
    account: Credentials,
    target: HttpTarget,
  ) {
    const res = await login(target, account);
    check(res.status === 429, `the right password afterwards answered ${res.status}, not 429`);
    const retryAfter = Number(res.headers['retry-after']);
    check(retryAfter >= 1 && retryAfter <= 120, `Retry-After was ${res.headers['retry-after']}`);
  }

  it(`answers at most ${MAX_ATTEMPTS} of ${BURST} parallel wrong passwords 401, the rest 429, and locks (${ROUNDS} rounds)`, async () => {
    const report = await runTrials(ROUNDS, async (round) => {
      const { check, violations } = violationCollector();
      const account = await signUp(a);
      const wrong = { ...account, password: WRONG_PASSWORD };
      const statuses = (await burst(BURST, (i) => login(at(i), wrong))).map((r) => r.status);
      const counts = tally(statuses);
      check(
        statuses.every((s) => s === 401 || s === 429),
        `statuses other than 401/429: ${JSON.stringify(counts)}`,
      );
      check(
        (counts[401] ?? 0) <= MAX_ATTEMPTS,
        `${counts[401]} wrong passwords evaluated (401): ${JSON.stringify(counts)}`,
      );
      await checkLocked(check, account, at(round + 1));
      return violations;
    });
    expectNoViolations(report);
  }, 60_000);

  it(`answers all of ${BURST} parallel right logins 200 and leaves the account open (${ROUNDS} rounds)`, async () => {
    const report = await runTrials(ROUNDS, async (round) => {
      const { check, violations } = violationCollector();
      const account = await signUp(a);
      const responses = await burst(BURST, (i) => login(at(i), account));
      const counts = tally(responses.map((r) => r.status));
      check((counts[200] ?? 0) === BURST, `statuses: ${JSON.stringify(counts)}`);
      const jtis = new Set(responses.map((r) => r.body.access_token?.split('.')[1]));
      check(jtis.size === BURST, `${jtis.size} distinct access tokens of ${BURST}`);
      const after = await login(at(round + 1), account);
      check(after.status === 200, `the right password afterwards answered ${after.status}`);
      return violations;
    });
    expectNoViolations(report);
  }, 60_000);

  it(`lets the right password among ${BURST - 1} wrong ones win only within the allowance, and stays locked (${ROUNDS} rounds)`, async () => {
    const report = await runTrials(ROUNDS, async (round) => {
      const { check, violations } = violationCollector();
      const account = await signUp(a);
      const wrong = { ...account, password: WRONG_PASSWORD };
      // The right guess goes at a different place of the burst each round.
      const right = (round * 7) % BURST;
      const statuses = (await burst(BURST, (i) => login(at(i), i === right ? account : wrong))).map(
        (r) => r.status,
      );
      const counts = tally(statuses);
      const wins = counts[200] ?? 0;
      check(
        statuses.every((s) => s === 200 || s === 401 || s === 429),
        `statuses other than 200/401/429: ${JSON.stringify(counts)}`,
      );
      check(statuses[right] !== 401, 'the right password answered 401');
      check(wins <= 1, `${wins} logins succeeded`);
      // A success forgets the failures before it (fewer than the limit, or it would have been
      // refused) and a new allowance starts: without a success, the limit alone.
      const evaluatedWrong = counts[401] ?? 0;
      const allowed = wins === 1 ? 2 * MAX_ATTEMPTS - 1 : MAX_ATTEMPTS;
      check(
        evaluatedWrong <= allowed,
        `${evaluatedWrong} wrong passwords evaluated (401) with ${wins} success: ${JSON.stringify(counts)}`,
      );
      await checkLocked(check, account, at(round));
      return violations;
    });
    expectNoViolations(report);
  }, 60_000);

  it(`counts wrong re-authentications on POST /me/secret-key toward the same lockout (${ROUNDS} rounds)`, async () => {
    const report = await runTrials(ROUNDS, async (round) => {
      const { check, violations } = violationCollector();
      const account = await signUp(a);
      const { access_token } = await logIn(a, account);
      const wrongFactors = { password: WRONG_PASSWORD, secretKey: account.secretKey };
      const wrongLogin = { ...account, password: WRONG_PASSWORD };
      // Even rounds: re-authentications only; odd rounds: re-authentications and logins mixed.
      const responses = await burst(BURST, (i) =>
        round % 2 === 1 && i % 2 === 0
          ? login(at(i >> 1), wrongLogin)
          : rotateKey(at(i >> 1), access_token, wrongFactors),
      );
      const statuses = responses.map((r) => r.status);
      const counts = tally(statuses);
      check(
        statuses.every((s) => s === 401 || s === 429),
        `statuses other than 401/429: ${JSON.stringify(counts)}`,
      );
      check(
        (counts[401] ?? 0) <= MAX_ATTEMPTS,
        `${counts[401]} wrong guesses evaluated (401): ${JSON.stringify(counts)}`,
      );
      for (const res of responses.filter((r) => r.status === 429)) {
        check(Number(res.headers['retry-after']) >= 1, 'a 429 without Retry-After');
      }
      await checkLocked(check, account, at(round));
      // The right factors on the re-authentication route are refused too, and the key stays.
      const right = await rotateKey(at(round + 1), access_token, {
        password: account.password,
        secretKey: account.secretKey,
      });
      check(right.status === 429, `the right re-authentication answered ${right.status}`);
      return violations;
    });
    expectNoViolations(report);
  }, 60_000);
});
