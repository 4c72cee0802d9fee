import { createHash } from 'node:crypto';
import { CapturingLogger } from '../support/capturing.logger.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { base32Decode, freshStep, totpAt } from '../support/totp.js';

// Logging does not depend on the database; SQLite keeps this suite fast.
describe('audit events and logs', () => {
  let suite: SuiteEnvironment;
  let running: RunningApp;
  const logger = new CapturingLogger();
  const secrets: string[] = [];

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite', {
      TOTP_ENCRYPTION_KEYS: 'audit:' + Buffer.alloc(32, 3).toString('base64'),
      LOCKOUT_MAX_ATTEMPTS: '3',
    });
    running = await startSampleApp(suite.env, logger);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('emits typed events for every step of a session, as JSON log lines without any secret', async () => {
    const account = await signUp(running, 'audited-user', 'audited password 123');
    secrets.push(account.password, account.secretKey);
    const pair = await logIn(running, account);
    secrets.push(pair.access_token, pair.refresh_token);
    const refreshed = await running
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: pair.refresh_token })
      .expect(200);
    secrets.push(refreshed.body.access_token, refreshed.body.refresh_token);
    // Re-use of the spent refresh token: detected, family revoked.
    await running
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: pair.refresh_token })
      .expect(401);

    const second = await logIn(running, account);
    secrets.push(second.access_token, second.refresh_token);
    const auth = { Authorization: `Bearer ${second.access_token}` };
    const rotated = await running
      .http()
      .post('/me/secret-key')
      .set(auth)
      .send({ password: account.password, secretKey: account.secretKey })
      .expect(200);
    secrets.push(rotated.body.secretKey);

    const third = await logIn(running, { ...account, secretKey: rotated.body.secretKey });
    secrets.push(third.access_token, third.refresh_token);
    const auth3 = { Authorization: `Bearer ${third.access_token}` };
    const enrolment = await running
      .http()
      .post('/me/totp')
      .set(auth3)
      .send({ password: account.password, secretKey: rotated.body.secretKey })
      .expect(200);
    secrets.push(enrolment.body.secret, enrolment.body.otpauthUri);
    const secret = base32Decode(enrolment.body.secret);
    const step = await freshStep();
    const confirmOtp = totpAt(secret, step - 1);
    const confirmed = await running
      .http()
      .post('/me/totp/confirm')
      .set(auth3)
      .send({ otp: confirmOtp })
      .expect(200);
    secrets.push(confirmOtp, ...confirmed.body.recoveryCodes);
    const loginOtp = totpAt(secret, step);
    secrets.push(loginOtp);
    const totpLogin = await running
      .http()
      .post('/auth/token')
      .send({ username: account.username, password: account.password, otp: loginOtp })
      .expect(200);
    secrets.push(totpLogin.body.access_token, totpLogin.body.refresh_token);
    const auth4 = { Authorization: `Bearer ${totpLogin.body.access_token}` };
    await running
      .http()
      .post('/auth/token')
      .send({
        username: account.username,
        password: account.password,
        recoveryCode: confirmed.body.recoveryCodes[0],
      })
      .expect(200);
    const offOtp = totpAt(secret, step + 1);
    secrets.push(offOtp);
    const off = await running
      .http()
      .delete('/me/totp')
      .set(auth4)
      .send({ password: account.password, otp: offOtp })
      .expect(200);
    secrets.push(off.body.secretKey);
    const last = await logIn(running, { ...account, secretKey: off.body.secretKey });
    secrets.push(last.access_token, last.refresh_token);
    await running
      .http()
      .post('/auth/revoke')
      .set({ Authorization: `Bearer ${last.access_token}` })
      .expect(204);

    for (const wrong of ['wrong password 1', 'wrong password 2', 'wrong password 3']) {
      secrets.push(wrong);
      await running
        .http()
        .post('/auth/token')
        .send({ username: account.username, password: wrong, secretKey: off.body.secretKey });
    }

    const names = new Set(logger.auditEvents().map((e) => e.name));
    for (const name of [
      'login.succeeded',
      'login.failed',
      'account.locked',
      'token.issued',
      'token.refreshed',
      'token.revoked',
      'refresh.reused',
      'secret-key.rotated',
      'totp.enabled',
      'totp.disabled',
      'recovery-code.used',
    ]) {
      expect(names).toContain(name);
    }
    const failed = logger.auditEvents().find((e) => e.name === 'login.failed');
    expect(failed).toMatchObject({
      reason: expect.any(String),
      usernameHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // Keyed: a dictionary of names hashed with plain SHA-256 does not find it.
    const normalised = account.username.trim().normalize('NFC').toLowerCase();
    for (const name of [account.username, normalised]) {
      expect(failed?.usernameHash).not.toBe(createHash('sha256').update(name).digest('hex'));
    }

    const everything = logger.lines.join('\n');
    for (const secretValue of secrets) {
      expect(everything).not.toContain(secretValue);
    }
    expect(everything).not.toContain(enrolment.body.secret.slice(0, 16));
  });
});
