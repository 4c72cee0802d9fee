import { setups } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { base32Decode, freshStep, totpAt } from '../support/totp.js';

const TOTP_KEY = 'suite:' + Buffer.alloc(32, 7).toString('base64');

describe.each(setups())('TOTP second factor on %s with %s', (kind, adapter) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, {
      HTTP_ADAPTER: adapter,
      TOTP_ENCRYPTION_KEYS: TOTP_KEY,
      LOCKOUT_MAX_ATTEMPTS: '50',
    });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  async function enrol() {
    const account = await signUp(running);
    const { access_token } = await logIn(running, account);
    const before = { Authorization: `Bearer ${access_token}` };
    const started = await running
      .http()
      .post('/me/totp')
      .set(before)
      .send({ password: account.password, secretKey: account.secretKey })
      .expect(200);
    const secret = base32Decode(started.body.secret);
    const step = await freshStep();
    const confirmed = await running
      .http()
      .post('/me/totp/confirm')
      .set(before)
      .send({ otp: totpAt(secret, step - 1) })
      .expect(200);
    const recoveryCodes = confirmed.body.recoveryCodes as string[];
    // Confirming ends every session; log in again with the last recovery code.
    await running.http().get('/me').set(before).expect(401);
    const again = await running
      .http()
      .post('/auth/token')
      .send({
        username: account.username,
        password: account.password,
        recoveryCode: recoveryCodes[9],
      })
      .expect(200);
    const auth = { Authorization: `Bearer ${again.body.access_token}` };
    return { account, auth, secret, step, enrolment: started.body, recoveryCodes };
  }

  const login = (body: object) => running.http().post('/auth/token').send(body);

  it('enrols with a base32 secret, an otpauth URI and a QR code, and switches only on confirmation', async () => {
    const account = await signUp(running, `totp-${Date.now()}`);
    const { access_token } = await logIn(running, account);
    const auth = { Authorization: `Bearer ${access_token}` };
    // A bearer token alone does not start an enrolment (re-authentication).
    await running.http().post('/me/totp').set(auth).expect(401);
    const started = await running
      .http()
      .post('/me/totp')
      .set(auth)
      .send({ password: account.password, secretKey: account.secretKey })
      .expect(200);
    expect(started.body.secret).toMatch(/^[A-Z2-7]{32,}$/);
    expect(base32Decode(started.body.secret).length).toBeGreaterThanOrEqual(20);
    const uri = new URL(started.body.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toContain(account.username);
    expect(uri.searchParams.get('issuer')).toBe('https://issuer.test');
    expect(uri.searchParams.get('secret')).toBe(started.body.secret);
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(started.body.qrCode).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);

    // Still pending: the secret key works, TOTP codes do not.
    const secret = base32Decode(started.body.secret);
    const step = await freshStep();
    await login({
      username: account.username,
      password: account.password,
      otp: totpAt(secret, step),
    }).expect(401);
    await logIn(running, account);
    const rows = await running.dataSource.query('SELECT * FROM tfa_totp_credentials');
    expect(JSON.stringify(rows)).not.toContain(started.body.secret);

    await running.http().post('/me/totp/confirm').set(auth).send({ otp: '000000' }).expect(401);
    const confirmed = await running
      .http()
      .post('/me/totp/confirm')
      .set(auth)
      .send({ otp: totpAt(secret, step) })
      .expect(200);
    expect(confirmed.body.recoveryCodes).toHaveLength(10);
    expect(new Set(confirmed.body.recoveryCodes).size).toBe(10);
    for (const code of confirmed.body.recoveryCodes) {
      expect(code).toMatch(/^([A-Z2-9]{5}-){4}[A-Z2-9]{5}$/);
    }
    // The secret key is no longer a factor, and the session that enrolled has ended.
    const creds = { username: account.username, password: account.password };
    await login({ ...creds, secretKey: account.secretKey }).expect(401);
    await running.http().get('/me/totp').set(auth).expect(401);
    const again = await login({ ...creds, otp: totpAt(secret, step + 1) }).expect(200);
    const fresh = { Authorization: `Bearer ${again.body.access_token}` };
    const status = await running.http().get('/me/totp').set(fresh).expect(200);
    expect(status.body).toEqual({ enabled: true, pending: false, recoveryCodesRemaining: 10 });
    // A key rotation makes no sense for a TOTP account.
    await running
      .http()
      .post('/me/secret-key')
      .set(fresh)
      .send({ password: account.password, recoveryCode: confirmed.body.recoveryCodes[0] })
      .expect(409);
  });

  it('accepts each code once, refuses replays and old steps, and each recovery code once', async () => {
    const { account, secret, step, recoveryCodes, auth } = await enrol();
    const creds = { username: account.username, password: account.password };
    await login({ ...creds, otp: totpAt(secret, step) }).expect(200);
    await login({ ...creds, otp: totpAt(secret, step) }).expect(401);
    await login({ ...creds, otp: totpAt(secret, step - 1) }).expect(401);
    await login({ ...creds, otp: totpAt(secret, step - 3) }).expect(401);
    await login({ ...creds, otp: totpAt(secret, step + 5) }).expect(401);
    await login({ ...creds, otp: '12345' }).expect(401);

    await login({ ...creds, recoveryCode: recoveryCodes[0] }).expect(200);
    await login({ ...creds, recoveryCode: recoveryCodes[0] }).expect(401);
    await login({ ...creds, recoveryCode: recoveryCodes[1].toLowerCase() }).expect(200);
    await login({
      username: account.username,
      password: 'wrong password',
      recoveryCode: recoveryCodes[2],
    }).expect(401);
    const status = await running.http().get('/me/totp').set(auth).expect(200);
    expect(status.body.recoveryCodesRemaining).toBe(7);

    // Basic credentials with X-OTP work too.
    await running
      .http()
      .post('/auth/token')
      .auth(account.username, account.password)
      .set('X-OTP', totpAt(secret, step + 1))
      .expect(200);
  });

  it('answers parallel starts of one enrolment 200, never 5xx; the secret of exactly one confirms', async () => {
    const account = await signUp(running);
    const { access_token } = await logIn(running, account);
    const auth = { Authorization: `Bearer ${access_token}` };
    const starts = await Promise.all(
      Array.from({ length: 20 }, () =>
        running
          .http()
          .post('/me/totp')
          .set(auth)
          .send({ password: account.password, secretKey: account.secretKey }),
      ),
    );
    expect(starts.map((r) => r.status)).toEqual(starts.map(() => 200));
    const step = await freshStep();
    const confirms: number[] = [];
    for (const started of starts) {
      const otp = totpAt(base32Decode(started.body.secret), step - 1);
      confirms.push((await running.http().post('/me/totp/confirm').set(auth).send({ otp })).status);
      if (confirms.at(-1) === 200) break;
    }
    expect(confirms.filter((s) => s === 200)).toHaveLength(1);
    expect(confirms.every((s) => s === 200 || s === 401)).toBe(true);
  });

  it('lets at most one of several concurrent logins use the same code', async () => {
    const { account, secret, step } = await enrol();
    const otp = totpAt(secret, step);
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        login({ username: account.username, password: account.password, otp }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401)).toHaveLength(5);
  });

  it('regenerates recovery codes (old ones die) and disables with a code, handing back a secret key', async () => {
    const { account, secret, step, recoveryCodes, auth } = await enrol();
    const creds = { username: account.username, password: account.password };
    // A code without the password is not enough (re-authentication needs both).
    await running
      .http()
      .post('/me/totp/recovery-codes')
      .set(auth)
      .send({ otp: totpAt(secret, step) })
      .expect(401);
    const fresh = await running
      .http()
      .post('/me/totp/recovery-codes')
      .set(auth)
      .send({ password: account.password, otp: totpAt(secret, step) })
      .expect(200);
    expect(fresh.body.recoveryCodes).toHaveLength(10);
    await login({ ...creds, recoveryCode: recoveryCodes[0] }).expect(401);
    await login({ ...creds, recoveryCode: fresh.body.recoveryCodes[0] }).expect(200);

    await running
      .http()
      .delete('/me/totp')
      .set(auth)
      .send({ password: account.password, otp: '999999' })
      .expect(401);
    const off = await running
      .http()
      .delete('/me/totp')
      .set(auth)
      .send({ password: account.password, otp: totpAt(secret, step + 1) })
      .expect(200);
    expect(off.body.secretKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await running.http().get('/me').set(auth).expect(401);
    const back = await logIn(running, { ...creds, secretKey: off.body.secretKey });
    await login({ ...creds, recoveryCode: fresh.body.recoveryCodes[1] }).expect(401);
    const status = await running
      .http()
      .get('/me/totp')
      .set({ Authorization: `Bearer ${back.access_token}` })
      .expect(200);
    expect(status.body).toEqual({ enabled: false, pending: false, recoveryCodesRemaining: 0 });
  });

  it('answers every failure with the same 401 whatever the account mode', async () => {
    const { account } = await enrol();
    const plain = await signUp(running);
    const bodies = new Set<string>();
    for (const body of [
      { username: account.username, password: account.password, otp: '000000' },
      { username: account.username, password: account.password, secretKey: plain.secretKey },
      { username: plain.username, password: plain.password, otp: '000000' },
      { username: 'nobody-here', password: 'whatever-password', otp: '000000' },
    ]) {
      const res = await login(body).expect(401);
      bodies.add(JSON.stringify(res.body));
    }
    expect(bodies.size).toBe(1);
  });
});
