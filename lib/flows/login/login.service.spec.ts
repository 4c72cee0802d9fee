/**
 * LoginService on each real database, called directly: every factor is checked, every failure
 * is the same error and is counted by the lockout, and re-authentication is a login against the
 * token's account (another account's factors never pass).
 */
import { jest } from '@jest/globals';
import { hash as argon2Hash } from '@node-rs/argon2';
import { createModuleFixture, type ModuleFixture } from '../../../test/support/module-fixture.js';
import { PasswordHasher } from '../../core/passwords/password-hasher.service.js';
import { databases } from '../../../test/support/servers.js';
import { AccountService } from '../accounts/account.service.js';
import { LoginService } from './login.service.js';
import { asHttpError } from '../../http/errors/error-mapping.js';

const MAX_ATTEMPTS = 4;
const PASSWORD = 'correct horse battery';
const OTHER_KEY = 'A'.repeat(43);

/** The HTTP answer an error of the service becomes, as the edge writes it. */
function answerOf(error: unknown): { status?: number; body?: unknown } {
  const e = asHttpError(error) as { getStatus?: () => number; getResponse?: () => unknown };
  return { status: e.getStatus?.(), body: e.getResponse?.() };
}

async function failure(promise: Promise<unknown>): Promise<{ status?: number; body?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return answerOf(error);
  }
  throw new Error('expected a failure');
}

describe.each(databases())('LoginService on %s', (kind) => {
  let fixture: ModuleFixture;
  let login: LoginService;
  let accounts: AccountService;
  let n = 0;

  beforeAll(async () => {
    fixture = await createModuleFixture(kind, {
      lockout: { maxAttempts: MAX_ATTEMPTS, seconds: 60 },
    });
    login = fixture.get(LoginService);
    accounts = fixture.get(AccountService);
  });
  afterAll(() => fixture?.close());

  const newAccount = async () => {
    const username = `login-${kind}-${++n}`;
    const created = await accounts.create(username, PASSWORD);
    return { username, id: created.account.id, secretKey: created.secretKey };
  };

  it('answers the account when every factor matches, whatever the spelling of the name', async () => {
    const a = await newAccount();
    const found = await login.authenticate({
      username: ` ${a.username.toUpperCase()}`,
      password: PASSWORD,
      secretKey: a.secretKey,
    });
    expect(found.id).toBe(a.id);
    expect(fixture.events.filter((e) => e.name === 'login.succeeded').at(-1)).toMatchObject({
      accountId: a.id,
      secondFactor: 'secret-key',
    });
  });

  it('fails every wrong, missing or unknown factor with one and the same answer', async () => {
    const a = await newAccount();
    const b = await newAccount();
    const attempts = [
      { username: a.username, password: 'wrong password!', secretKey: a.secretKey },
      { username: a.username, password: PASSWORD, secretKey: OTHER_KEY },
      { username: a.username, password: PASSWORD, secretKey: b.secretKey },
      { username: a.username, password: PASSWORD },
      { username: `nobody-${kind}-${n}`, password: PASSWORD, secretKey: a.secretKey },
    ];
    const answers = [];
    for (const credentials of attempts) {
      answers.push(await failure(login.authenticate(credentials)));
    }
    expect(new Set(answers.map((x) => JSON.stringify(x))).size).toBe(1);
    expect(answers[0]).toEqual({
      status: 401,
      body: { statusCode: 401, message: 'Invalid credentials', error: 'Unauthorized' },
    });
  });

  it('counts each failure toward the lockout, then refuses even the right factors', async () => {
    const a = await newAccount();
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const answer = await failure(
        login.authenticate({
          username: a.username,
          password: `wrong ${i}`,
          secretKey: a.secretKey,
        }),
      );
      expect(answer.status).toBe(401);
    }
    const locked = await failure(
      login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey }),
    );
    expect(locked.status).toBe(429);
  });

  it("re-authenticates the token's account only, and counts its failures with the logins'", async () => {
    const a = await newAccount();
    const b = await newAccount();
    expect(
      (await login.reauthenticate(a.id, { password: PASSWORD, secretKey: a.secretKey })).id,
    ).toBe(a.id);
    // B's own (correct) factors do not re-authenticate a token of A.
    expect(
      (await failure(login.reauthenticate(a.id, { password: PASSWORD, secretKey: b.secretKey })))
        .status,
    ).toBe(401);
    for (let i = 1; i < MAX_ATTEMPTS; i++) {
      await failure(login.reauthenticate(a.id, { password: 'wrong', secretKey: a.secretKey }));
    }
    // Re-authentication failures locked the login too.
    const locked = await failure(
      login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey }),
    );
    expect(locked.status).toBe(429);
  });

  /** Runs `sql` (with `?` placeholders, numbered for PostgreSQL) on the fixture's database. */
  const query = (sql: string, params: unknown[]) => {
    let n = 0;
    const numbered = kind === 'postgres' ? sql.replace(/\?/g, () => `$${++n}`) : sql;
    return fixture.dataSource.query(numbered, params) as Promise<Record<string, unknown>[]>;
  };

  /** Stores for `id` a hash of `password` made with weaker parameters than the configured ones. */
  async function outdate(id: string, password: string): Promise<string> {
    const weak = await argon2Hash(password, { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    await query('UPDATE tfa_accounts SET password_hash = ? WHERE id = ?', [weak, id]);
    return weak;
  }

  const storedHash = async (id: string) =>
    String(
      (await query('SELECT password_hash FROM tfa_accounts WHERE id = ?', [id]))[0].password_hash,
    );

  it('re-hashes a password stored with outdated parameters at the next login', async () => {
    const a = await newAccount();
    const weak = await outdate(a.id, PASSWORD);
    const hasher = fixture.get(PasswordHasher);
    expect(hasher.needsRehash(weak)).toBe(true);
    await login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey });
    const now = await storedHash(a.id);
    expect(now).not.toBe(weak);
    expect(hasher.needsRehash(now)).toBe(false);
    await login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey });
  });

  it('never lets a login’s re-hash undo a password change that landed meanwhile', async () => {
    const a = await newAccount();
    await outdate(a.id, PASSWORD);
    const hasher = fixture.get(PasswordHasher);
    const original = hasher.hash.bind(hasher);
    const newPassword = 'a password changed meanwhile';
    // The change lands after the login read the old hash, while it computes the new one.
    const spy = jest.spyOn(hasher, 'hash').mockImplementationOnce(async (password: string) => {
      const rehashed = await original(password);
      await accounts.changePassword(a.id, newPassword);
      return rehashed;
    });
    try {
      await login.authenticate({
        username: a.username,
        password: PASSWORD,
        secretKey: a.secretKey,
      });
    } finally {
      spy.mockRestore();
    }
    expect(
      (
        await login.authenticate({
          username: a.username,
          password: newPassword,
          secretKey: a.secretKey,
        })
      ).id,
    ).toBe(a.id);
    const old = await failure(
      login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey }),
    );
    expect(old.status).toBe(401);
  });

  it('refuses re-authentication for an account that no longer exists', async () => {
    const a = await newAccount();
    await accounts.delete(a.id);
    const answer = await failure(
      login.reauthenticate(a.id, { password: PASSWORD, secretKey: a.secretKey }),
    );
    expect(answer.status).toBe(401);
  });

  it('refuses a disabled account with the same answer as a wrong password, and counts it', async () => {
    const a = await newAccount();
    await accounts.disable(a.id);
    const answer = await failure(
      login.authenticate({ username: a.username, password: PASSWORD, secretKey: a.secretKey }),
    );
    expect(answer.status).toBe(401);
    expect(fixture.events.filter((e) => e.name === 'login.failed').at(-1)).toMatchObject({
      accountId: a.id,
      reason: 'disabled',
    });
  });
});
