import { isAvailable } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
} from '../support/sample-app.harness.js';

/** What keeps a Node process alive, by kind (timers, sockets, …), ignoring the terminal. */
function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'TTYWrap') continue;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

describe('shutdown', () => {
  // The Redis case runs where Redis answers (always in CI, where its absence fails the run).
  const cases: [string, boolean][] = [['without Redis', false]];
  if (isAvailable('redis')) cases.push(['with Redis', true]);

  it.each(cases)('closes every connection and timer it opened (%s)', async (_label, withRedis) => {
    const suite = await createSuiteEnvironment(
      'sqlite',
      withRedis ? { REDIS_URL: process.env.TEST_REDIS_URL! } : {},
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = handles();

    const running = await startSampleApp(suite.env);
    const account = await signUp(running);
    const pair = await logIn(running, account);
    await running.http().get('/me').set('Authorization', `Bearer ${pair.access_token}`).expect(200);
    await running.http().get('/health').expect(200);
    const during = handles();
    expect(Object.values(during).reduce((a, b) => a + b, 0)).toBeGreaterThan(
      Object.values(before).reduce((a, b) => a + b, 0),
    );

    await running.close();
    // Sockets finish closing asynchronously: give them up to 2 s, then nothing may remain
    // that the app opened (timers of Jest itself may come and go meanwhile).
    const leftovers = () =>
      Object.keys(handles()).filter((kind) => handles()[kind] > (before[kind] ?? 0));
    for (let i = 0; i < 20 && leftovers().length > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    const after = handles();
    for (const kind of Object.keys(after)) {
      expect({ kind, count: after[kind] }).toEqual({
        kind,
        count: Math.min(after[kind], before[kind] ?? 0),
      });
    }
    await suite.cleanup();
  });
});
