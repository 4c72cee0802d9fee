/**
 * The guard's revocation view across instances without Redis (the database poll alone):
 * a revocation made by an instance whose clock is behind still reaches the others (the cursor
 * is the database clock), the view holds only what the guard needs (refresh rotations add
 * nothing), and a deleted account's tokens, already verified elsewhere, are refused at once.
 */
import { join } from 'node:path';
import { RevocationView } from '../../lib/core/revocation/revocation-view.service.js';
import { AccountService } from '../../lib/flows/accounts/account.service.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { databases } from '../support/servers.js';
import { spawnSampleApp, type SpawnedApp } from '../support/spawned-app.js';

/** `revocation.syncInterval` (500 ms) with room for a slow poll on a busy machine. */
const POLL_BOUND_MS = 2000;
const SKEW_MS = -12_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function meStatus(http: () => ReturnType<RunningApp['http']>, token: string) {
  return (await http().get('/me').set('Authorization', `Bearer ${token}`)).status;
}

/** Milliseconds until `token` is refused by `app` (Infinity if still accepted after `limit`). */
async function msUntilRefused(app: RunningApp, token: string, limit: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const status = await meStatus(() => app.http(), token);
    if (status === 401) return Date.now() - start;
    expect(status).toBe(200);
    if (Date.now() - start > limit) return Infinity;
    await sleep(50);
  }
}

describe.each(databases())('revocation view without Redis on %s', (kind) => {
  let suite: SuiteEnvironment;
  let behind: SpawnedApp;
  let b: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind);
    b = await startSampleApp(suite.env);
    // A separate process whose clock runs 12 s behind: everything it stamps is "in the past".
    behind = await spawnSampleApp({
      ...suite.env,
      NODE_OPTIONS: `--import ${join(process.cwd(), 'test/support/skewed-clock.mjs')}`,
      TFA_TEST_CLOCK_OFFSET_MS: String(SKEW_MS),
    });
  });
  afterAll(async () => {
    await behind?.stop();
    await b?.close();
    await suite?.cleanup();
  });

  it('refuses on B, within the poll bound, a login revoked by an instance whose clock is 12 s behind', async () => {
    const account = await signUp(b);
    const res = await behind
      .http()
      .post('/auth/token')
      .send({
        username: account.username,
        password: account.password,
        secretKey: account.secretKey,
      })
      .expect(200);
    const token: string = res.body.access_token;
    expect(await meStatus(() => b.http(), token)).toBe(200); // B has verified it: cached
    await behind.http().post('/auth/revoke').set('Authorization', `Bearer ${token}`).expect(204);
    expect(await msUntilRefused(b, token, POLL_BOUND_MS + 10_000)).toBeLessThanOrEqual(
      POLL_BOUND_MS,
    );
  });

  it('refuses on B a revoke-all (password change) made by the instance whose clock is behind', async () => {
    const account = await signUp(b);
    const pair = await logIn(b, account);
    expect(await meStatus(() => b.http(), pair.access_token)).toBe(200);
    const own = await behind
      .http()
      .post('/auth/token')
      .send({
        username: account.username,
        password: account.password,
        secretKey: account.secretKey,
      })
      .expect(200);
    await behind
      .http()
      .post('/me/password')
      .set('Authorization', `Bearer ${own.body.access_token}`)
      .send({
        password: account.password,
        secretKey: account.secretKey,
        newPassword: 'another long passphrase',
      })
      .expect(204);
    expect(await msUntilRefused(b, pair.access_token, POLL_BOUND_MS + 10_000)).toBeLessThanOrEqual(
      POLL_BOUND_MS,
    );
  });

  it('holds no entry for spent refresh tokens: 30 rotations leave the view as it was', async () => {
    const view = b.app.get(RevocationView);
    const account = await signUp(b);
    let pair = await logIn(b, account);
    await sleep(POLL_BOUND_MS); // let earlier revocations of this suite arrive first
    const before = view.size;
    for (let i = 0; i < 30; i++) {
      const res = await b
        .http()
        .post('/auth/refresh')
        .send({ refresh_token: pair.refresh_token })
        .expect(200);
      pair = res.body;
    }
    await sleep(POLL_BOUND_MS);
    expect(view.size).toBe(before);
    // A logout adds its live access tokens (30 rotations: 31 access tokens), and only those.
    await b
      .http()
      .post('/auth/revoke')
      .set('Authorization', `Bearer ${pair.access_token}`)
      .expect(204);
    expect(view.size).toBe(before + 31);
  });

  it('refuses at once, on the deleting instance, and within the poll bound elsewhere, a deleted account', async () => {
    const account = await signUp(b);
    const onB = await logIn(b, account);
    const onBehind = await behind
      .http()
      .post('/auth/token')
      .send({
        username: account.username,
        password: account.password,
        secretKey: account.secretKey,
      })
      .expect(200);
    // Each instance has verified (and remembers) a token: B its own and the other's, the
    // instance whose clock is behind its own (B's tokens are "from the future" for it).
    expect(await meStatus(() => b.http(), onB.access_token)).toBe(200);
    expect(await meStatus(() => b.http(), onBehind.body.access_token)).toBe(200);
    expect(await meStatus(() => behind.http(), onBehind.body.access_token)).toBe(200);
    await b.app.get(AccountService).delete(account.id);
    expect(await meStatus(() => b.http(), onB.access_token)).toBe(401);
    expect(await meStatus(() => b.http(), onBehind.body.access_token)).toBe(401);
    const start = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - start < POLL_BOUND_MS + 5000) {
      status = await meStatus(() => behind.http(), onBehind.body.access_token);
      if (status === 200) await sleep(50);
    }
    expect(status).toBe(401);
    expect(Date.now() - start).toBeLessThanOrEqual(POLL_BOUND_MS);
    for (const table of [
      'tfa_accounts',
      'tfa_secret_keys',
      'tfa_issued_tokens',
      'tfa_token_families',
      'tfa_totp_credentials',
      'tfa_recovery_codes',
    ]) {
      const column = table === 'tfa_accounts' ? 'id' : 'account_id';
      const rows = await b.dataSource
        .createQueryBuilder()
        .select('COUNT(*)', 'n')
        .from(table, 't')
        .where(`t.${column} = :id`, { id: account.id })
        .getRawOne<{ n: string | number }>();
      expect({ table, n: Number(rows?.n) }).toEqual({ table, n: 0 });
    }
  });
});
