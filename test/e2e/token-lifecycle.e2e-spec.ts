import type { FindOptionsWhere } from 'typeorm';
import { AccountService, IssuedToken, TokenService } from '../../lib/index.js';
import { setups } from '../support/servers.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

type Pair = { access_token: string; refresh_token: string };

/** The claims of a JWT, read without verifying (the server verifies; the test inspects). */
function claimsOf(token: string): { jti: string; sub: string; exp: number; iat: number } {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

describe.each(setups())('token lifecycle on %s with %s', (kind, adapter) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(kind, { HTTP_ADAPTER: adapter });
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  /** Status of `GET /me` with `token` as Bearer (and the body, when it is 200). */
  async function me(token: string): Promise<number> {
    const res = await running.http().get('/me').set('Authorization', `Bearer ${token}`);
    if (res.status === 401) {
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
    return res.status;
  }

  function refresh(refreshToken: string) {
    return running.http().post('/auth/refresh').send({ refresh_token: refreshToken });
  }

  function revoke(bearer: string, body?: object) {
    const req = running.http().post('/auth/revoke').set('Authorization', `Bearer ${bearer}`);
    return body === undefined ? req : req.send(body);
  }

  function rows(where: FindOptionsWhere<IssuedToken>): Promise<IssuedToken[]> {
    return running.dataSource.getRepository(IssuedToken).find({ where });
  }

  describe('refresh', () => {
    it('spends a refresh token for a new pair; a spent one never works again', async () => {
      const account = await signUp(running);
      const first = await logIn(running, account);
      const res = await refresh(first.refresh_token).expect(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: expect.any(String),
        refresh_expires_in: 604800,
      });
      const second: Pair = res.body;
      expect(second.access_token).not.toBe(first.access_token);
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(claimsOf(second.access_token).sub).toBe(account.id);
      expect(await me(second.access_token)).toBe(200);

      // Its record says it was spent, and by what.
      const [spent] = await rows({ jti: claimsOf(first.refresh_token).jti });
      expect(spent.revokedReason).toBe('rotated');
      expect(spent.replacedBy).toBe(claimsOf(second.refresh_token).jti);

      // The spent token is refused, again and again.
      for (let i = 0; i < 3; i++) await refresh(first.refresh_token).expect(401);
    });

    it('keeps rotating: each new refresh token works exactly once', async () => {
      const account = await signUp(running);
      let pair: Pair = await logIn(running, account);
      const family = (await rows({ jti: claimsOf(pair.refresh_token).jti }))[0].familyId;
      for (let i = 0; i < 4; i++) {
        const next: Pair = (await refresh(pair.refresh_token).expect(200)).body;
        expect(await me(next.access_token)).toBe(200);
        pair = next;
      }
      // One login: every token descends from it.
      const all = await rows({ accountId: account.id });
      expect(all).toHaveLength(10);
      expect(new Set(all.map((r) => r.familyId))).toEqual(new Set([family]));
      expect(all.filter((r) => r.type === 'refresh' && r.revokedAt === null)).toHaveLength(1);
    });

    it('names tokens and families with time-ordered ids (UUIDv7 of the issue time), so that new records sit together in the indexes', async () => {
      const account = await signUp(running);
      const before = Date.now();
      let pair: Pair = await logIn(running, account);
      const jtis = [claimsOf(pair.refresh_token).jti];
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        pair = (await refresh(pair.refresh_token).expect(200)).body;
        jtis.push(claimsOf(pair.refresh_token).jti);
      }
      const after = Date.now();
      const family = (await rows({ jti: jtis[0] }))[0].familyId;
      const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
      const millis = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
      for (const id of [...jtis, claimsOf(pair.access_token).jti, family]) {
        expect(id).toMatch(v7);
        expect(millis(id)).toBeGreaterThanOrEqual(before);
        expect(millis(id)).toBeLessThanOrEqual(after);
      }
      expect([...jtis].sort()).toEqual(jtis);
    });

    it('re-use of a spent refresh token revokes the whole family, newest tokens included', async () => {
      const account = await signUp(running);
      const p0 = await logIn(running, account);
      const p1: Pair = (await refresh(p0.refresh_token).expect(200)).body;
      const p2: Pair = (await refresh(p1.refresh_token).expect(200)).body;
      // Another login of the same account: a different family.
      const other = await logIn(running, account);
      // The newest access token is in use (and so remembered by the guard).
      expect(await me(p2.access_token)).toBe(200);
      expect(await me(other.access_token)).toBe(200);

      await refresh(p0.refresh_token).expect(401);

      expect(await me(p2.access_token)).toBe(401);
      expect(await me(p1.access_token)).toBe(401);
      expect(await me(p0.access_token)).toBe(401);
      await refresh(p2.refresh_token).expect(401);
      const family = await rows({
        familyId: (await rows({ jti: claimsOf(p2.access_token).jti }))[0].familyId,
      });
      expect(family).toHaveLength(6);
      for (const row of family) expect(row.revokedAt).not.toBeNull();
      expect(
        family
          .filter((r) => r.revokedReason === 'reuse-detected')
          .map((r) => r.jti)
          .sort(),
      ).toEqual(
        [p0.access_token, p0.refresh_token, p1.access_token, p2.access_token, p2.refresh_token]
          .map((t) => claimsOf(t).jti)
          .sort(),
      );

      // The other login is untouched.
      expect(await me(other.access_token)).toBe(200);
      await refresh(other.refresh_token).expect(200);
    });

    it('of 10 parallel refreshes with one token at most one succeeds, and the family dies', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => refresh(pair.refresh_token)),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(1);
      expect(statuses.filter((s) => s !== 200 && s !== 401)).toEqual([]);
      // At most one new pair was ever recorded for the spent token, and it is revoked.
      const children = await rows({ parentJti: claimsOf(pair.refresh_token).jti });
      expect(children.length === 0 || children.length === 2).toBe(true);
      // A winner that finds its family revoked withdraws what it wrote.
      for (const row of children)
        expect(['reuse-detected', 'withdrawn']).toContain(row.revokedReason);
      // Nine requests re-used a spent token: every token of this login is dead now,
      // including a pair handed to the winner.
      const winner = results.find((r) => r.status === 200)?.body as Pair | undefined;
      for (const token of [pair.access_token, winner?.access_token].filter(Boolean)) {
        expect(await me(token!)).toBe(401);
      }
      if (winner) await refresh(winner.refresh_token).expect(401);
      await refresh(pair.refresh_token).expect(401);
      // A fresh login works.
      expect(await me((await logIn(running, account)).access_token)).toBe(200);
    });

    it('two racing refreshes never leave the winner a live pair (repeated)', async () => {
      const account = await signUp(running);
      for (let round = 0; round < 8; round++) {
        const pair = await logIn(running, account);
        const results = await Promise.all([
          refresh(pair.refresh_token),
          refresh(pair.refresh_token),
        ]);
        const statuses = results.map((r) => r.status).sort();
        expect([
          [200, 401],
          [401, 401],
        ]).toContainEqual(statuses);
        const winner = results.find((r) => r.status === 200)?.body as Pair | undefined;
        if (winner) {
          expect(await me(winner.access_token)).toBe(401);
          await refresh(winner.refresh_token).expect(401);
        }
      }
    });
  });

  describe('access and refresh tokens are never taken for each other', () => {
    it('refuses a refresh token as Bearer and an access token on /auth/refresh', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);

      expect(await me(pair.refresh_token)).toBe(401);
      await revoke(pair.refresh_token).expect(401);
      await refresh(pair.access_token).expect(401);

      // Neither attempt spent or revoked anything.
      expect(await me(pair.access_token)).toBe(200);
      await refresh(pair.refresh_token).expect(200);
    });
  });

  describe('revocation', () => {
    it('POST /auth/revoke with a Bearer token ends that login at once', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);
      const other = await logIn(running, account);
      expect(await me(pair.access_token)).toBe(200);

      await revoke(pair.access_token).expect(204);

      // Visible on the very next request.
      expect(await me(pair.access_token)).toBe(401);
      await refresh(pair.refresh_token).expect(401);
      await revoke(pair.access_token).expect(401);
      // Only that login.
      expect(await me(other.access_token)).toBe(200);
      await refresh(other.refresh_token).expect(200);
      const [row] = await rows({ jti: claimsOf(pair.access_token).jti });
      expect(row.revokedReason).toBe('logout');
    });

    it('{"token": refresh token} revokes that token only', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);
      expect(await me(pair.access_token)).toBe(200);

      await revoke(pair.access_token, { token: pair.refresh_token }).expect(204);

      await refresh(pair.refresh_token).expect(401);
      // The access token used to ask is not revoked.
      expect(await me(pair.access_token)).toBe(200);
      const [row] = await rows({ jti: claimsOf(pair.refresh_token).jti });
      expect(row.revokedReason).toBe('revoked');
    });

    it('{"token": access token} revokes that token only', async () => {
      const account = await signUp(running);
      const asking = await logIn(running, account);
      const target = await logIn(running, account);
      expect(await me(target.access_token)).toBe(200);

      await revoke(asking.access_token, {
        token: target.access_token,
        token_type_hint: 'access_token',
      }).expect(204);

      expect(await me(target.access_token)).toBe(401);
      expect(await me(asking.access_token)).toBe(200);
      // The target's refresh token was not named, so it still works.
      await refresh(target.refresh_token).expect(200);
    });

    it('does not revoke someone else\'s token given in {"token"}', async () => {
      const mallory = await signUp(running);
      const victim = await signUp(running);
      const own = await logIn(running, mallory);
      const theirs = await logIn(running, victim);

      await revoke(own.access_token, { token: theirs.access_token }).expect(204);
      await revoke(own.access_token, { token: theirs.refresh_token }).expect(204);

      expect(await me(theirs.access_token)).toBe(200);
      await refresh(theirs.refresh_token).expect(200);
      const victimRows = await rows({ accountId: victim.id });
      expect(victimRows.filter((r) => r.revokedReason === 'revoked')).toEqual([]);
      // Mallory's own login is not touched either.
      expect(await me(own.access_token)).toBe(200);
    });

    it('POST /me/secret-key rotates the key and refuses every old token at once', async () => {
      const account = await signUp(running);
      const a = await logIn(running, account);
      const b = await logIn(running, account);
      const bystander = await logIn(running, await signUp(running));
      expect(await me(a.access_token)).toBe(200);
      expect(await me(b.access_token)).toBe(200);

      const res = await running
        .http()
        .post('/me/secret-key')
        .set('Authorization', `Bearer ${a.access_token}`)
        .send({ password: account.password, secretKey: account.secretKey })
        .expect(200);
      const newKey: string = res.body.secretKey;
      expect(newKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(newKey).not.toBe(account.secretKey);

      expect(await me(a.access_token)).toBe(401);
      expect(await me(b.access_token)).toBe(401);
      await refresh(a.refresh_token).expect(401);
      await refresh(b.refresh_token).expect(401);
      await running
        .http()
        .post('/auth/token')
        .send({
          username: account.username,
          password: account.password,
          secretKey: account.secretKey,
        })
        .expect(401);

      const fresh = await logIn(running, { ...account, secretKey: newKey });
      expect(await me(fresh.access_token)).toBe(200);
      await refresh(fresh.refresh_token).expect(200);
      expect(await me(bystander.access_token)).toBe(200);
    });

    it('TokenService.revokeAllForAccount refuses every token of the account', async () => {
      const account = await signUp(running);
      const warm = await logIn(running, account);
      const cold = await logIn(running, account);
      const spentFrom = await logIn(running, account);
      const rotated: Pair = (await refresh(spentFrom.refresh_token).expect(200)).body;
      const bystander = await logIn(running, await signUp(running));
      expect(await me(warm.access_token)).toBe(200);
      expect(await me(bystander.access_token)).toBe(200);

      await running.app.get(TokenService).revokeAllForAccount(account.id);

      for (const token of [warm, cold, rotated].map((p) => p.access_token)) {
        expect(await me(token)).toBe(401);
      }
      for (const token of [warm, cold, rotated].map((p) => p.refresh_token)) {
        await refresh(token).expect(401);
      }
      const live = (await rows({ accountId: account.id })).filter((r) => r.revokedAt === null);
      expect(live).toEqual([]);

      expect(await me(bystander.access_token)).toBe(200);
      // A new login works.
      expect(await me((await logIn(running, account)).access_token)).toBe(200);
    });

    it('AccountService.changePassword revokes everything and only the new password logs in', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);
      expect(await me(pair.access_token)).toBe(200);

      const newPassword = 'a brand new passphrase';
      await running.app.get(AccountService).changePassword(account.id, newPassword);

      expect(await me(pair.access_token)).toBe(401);
      await refresh(pair.refresh_token).expect(401);
      await running
        .http()
        .post('/auth/token')
        .send({
          username: account.username,
          password: account.password,
          secretKey: account.secretKey,
        })
        .expect(401);
      const fresh = await logIn(running, { ...account, password: newPassword });
      expect(await me(fresh.access_token)).toBe(200);
    });

    it('AccountService.disable revokes everything and refuses logins', async () => {
      const account = await signUp(running);
      const pair = await logIn(running, account);
      const cold = await logIn(running, account);
      expect(await me(pair.access_token)).toBe(200);

      await running.app.get(AccountService).disable(account.id);

      expect(await me(pair.access_token)).toBe(401);
      expect(await me(cold.access_token)).toBe(401);
      await refresh(pair.refresh_token).expect(401);
      await refresh(cold.refresh_token).expect(401);
      await running
        .http()
        .post('/auth/token')
        .send({
          username: account.username,
          password: account.password,
          secretKey: account.secretKey,
        })
        .expect(401);
    });
  });

  describe('pruneExpired', () => {
    it('deletes only the rows that expired more than the grace period ago', async () => {
      const GRACE = 86400; // the default prune.graceSeconds
      const account = await signUp(running);
      const old = await logIn(running, account);
      const recent = await logIn(running, account);
      const live = await logIn(running, account);
      const familyOf = async (pair: Pair) =>
        (await rows({ jti: claimsOf(pair.access_token).jti }))[0].familyId;
      const repo = running.dataSource.getRepository(IssuedToken);
      const now = Math.floor(Date.now() / 1000);
      // Expired a minute more than the grace period ago, and a minute less.
      await repo.update(
        { familyId: await familyOf(old) },
        { exp: now - GRACE - 60, nbf: 0, iat: 0 },
      );
      await repo.update(
        { familyId: await familyOf(recent) },
        { exp: now - GRACE + 60, nbf: 0, iat: 0 },
      );
      const before = await rows({ accountId: account.id });
      expect(before).toHaveLength(6);

      const deleted = await running.app.get(TokenService).pruneExpired();

      expect(deleted).toBe(2);
      const after = await rows({ accountId: account.id });
      expect(after.map((r) => r.jti).sort()).toEqual(
        before
          .filter((r) => r.exp > now - GRACE)
          .map((r) => r.jti)
          .sort(),
      );
      expect(after.map((r) => r.jti)).not.toContain(claimsOf(old.access_token).jti);
      expect(after.map((r) => r.jti)).toContain(claimsOf(recent.access_token).jti);
      // The unexpired login still works after pruning.
      expect(await me(live.access_token)).toBe(200);
      await refresh(live.refresh_token).expect(200);
      // Nothing left to prune.
      expect(await running.app.get(TokenService).pruneExpired()).toBe(0);
    });
  });
});
