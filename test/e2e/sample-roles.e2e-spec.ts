import { decodeJwt } from 'jose';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { databases } from '../support/servers.js';

/**
 * The sample app's roles: `claims` puts `roles` into every access token (admin for the accounts in
 * ADMIN_ACCOUNT_IDS), and a small guard on `/admin/accounts` reads them from the principal.
 */
describe.each(databases())('roles in tokens, sample app on %s', (kind) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;
  let admin: Awaited<ReturnType<typeof signUp>>;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind);
    // The admin registers first; the operator then lists its id (upper case and spaces too).
    const first = await startSampleApp(suite.env);
    admin = await signUp(first, 'root.admin');
    await first.close();
    running = await startSampleApp({
      ...suite.env,
      ADMIN_ACCOUNT_IDS: ` ${admin.id.toUpperCase()} ,00000000-0000-4000-8000-000000000001`,
    });
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('gives an admin the admin role and lets it disable an account, whose token dies at once', async () => {
    const user = await signUp(running);
    const adminTokens = await logIn(running, admin);
    const userTokens = await logIn(running, user);
    expect(decodeJwt(adminTokens.access_token).roles).toEqual(['user', 'admin']);
    expect(decodeJwt(userTokens.access_token).roles).toEqual(['user']);

    const me = await running.http().get('/me').auth(userTokens.access_token, { type: 'bearer' });
    expect(me.status).toBe(200);

    const forbidden = await running
      .http()
      .post(`/admin/accounts/${admin.id}/disable`)
      .auth(userTokens.access_token, { type: 'bearer' });
    expect(forbidden.status).toBe(403);
    const anonymous = await running.http().post(`/admin/accounts/${user.id}/disable`);
    expect(anonymous.status).toBe(401);

    await running
      .http()
      .post(`/admin/accounts/${user.id}/disable`)
      .auth(adminTokens.access_token, { type: 'bearer' })
      .expect(204);
    await running.http().get('/me').auth(userTokens.access_token, { type: 'bearer' }).expect(401);
    const { username, password, secretKey } = user;
    await running.http().post('/auth/token').send({ username, password, secretKey }).expect(401);

    await running
      .http()
      .post(`/admin/accounts/${user.id}/enable`)
      .auth(adminTokens.access_token, { type: 'bearer' })
      .expect(204);
    await logIn(running, user);
  });

  it('grants nothing by name: a look-alike of the admin’s name is a plain user', async () => {
    for (const name of ['Root.Admin.', 'root.admin2', 'ROOT.ADMIN\u00b7']) {
      const tokens = await logIn(running, await signUp(running, name));
      expect(decodeJwt(tokens.access_token).roles).toEqual(['user']);
    }
  });

  it('answers 404 for an unknown account and 400 for a malformed id', async () => {
    const { access_token: token } = await logIn(running, admin);
    await running
      .http()
      .post('/admin/accounts/00000000-0000-4000-8000-000000000000/disable')
      .auth(token, { type: 'bearer' })
      .expect(404);
    await running
      .http()
      .post('/admin/accounts/not-a-uuid/disable')
      .auth(token, { type: 'bearer' })
      .expect(400);
  });
});
