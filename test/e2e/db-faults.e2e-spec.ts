/**
 * The database fails while the app runs, then comes back. Whatever happens, the app fails
 * closed: the token route answers 503 + Retry-After and issues nothing, a guarded route never
 * lets an unchecked token through (503, or 401, never 200), and once the database is back
 * everything works again without a restart.
 *
 * SQLite (better-sqlite3, WAL): the app holds the file open, and the tests run as root, so
 * chmod, rename or delete change nothing for it (Linux keeps an open inode alive). What does
 * make it fail is the content of its files: they are overwritten in place (same inodes, same
 * lengths: the -shm file is memory-mapped) as a failing disk would, which gives SQLITE_NOTADB,
 * and the saved bytes are written back to recover. A write lock held by another connection is
 * the second fault: writes wait for the busy timeout (5 s), then fail.
 *
 * PostgreSQL (when it answers): new connections to the app's database are forbidden
 * (ALLOW_CONNECTIONS false, which binds superusers too, unlike CONNECTION LIMIT 0) and the
 * app's connections are terminated; then connections are allowed again.
 *
 * MariaDB (when it answers): the app's connections are killed; the pool must replace them.
 * (Refusing new connections would take a server-wide change that other suites would feel.)
 */
import mysql from 'mysql2/promise';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Response } from 'supertest';
import { isAvailable, pgAdmin } from '../support/servers.js';
import { startStallingProxy } from '../support/stalling-proxy.js';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';

/** The part of better-sqlite3 used here (the package ships no types of its own). */
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => {
  exec(sql: string): void;
  close(): void;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Revocation view: after this long without a successful sync, every token is refused. */
const MAX_STALENESS_MS = 5000;

type Credentials = { username: string; password: string; secretKey: string };

function pick({ username, password, secretKey }: Credentials): Credentials {
  return { username, password, secretKey };
}

function expectUnavailable(res: Response) {
  expect(res.status).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  expect(res.body.access_token).toBeUndefined();
  expect(res.body).toEqual({
    statusCode: 503,
    message: expect.any(String),
    error: 'Service Unavailable',
  });
  expect(res.text).not.toMatch(
    /SQLITE|QueryFailedError|ECONNREFUSED|terminat|database "|\bat \S+ \(/i,
  );
}

/** A guarded request during an outage: refused either way, never served. */
function expectNotServed(res: Response) {
  expect([401, 503]).toContain(res.status);
  expect(res.body.id).toBeUndefined();
}

/** Polls until `probe` is true, for at most `ms`; returns whether it became true. */
async function eventually(probe: () => Promise<boolean>, ms = 10000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

/** Overwrites an SQLite database and its -wal and -shm files in place, and puts them back. */
class SqliteDiskFault {
  private saved: [string, Buffer][] = [];

  constructor(private readonly path: string) {}

  break(): void {
    this.saved = ['', '-wal', '-shm']
      .map((suffix) => this.path + suffix)
      .filter((file) => existsSync(file))
      .map((file) => [file, readFileSync(file)]);
    for (const [file, bytes] of this.saved) overwrite(file, Buffer.alloc(bytes.length, 0xa5));
  }

  restore(): void {
    for (const [file, bytes] of this.saved) overwrite(file, bytes);
    this.saved = [];
  }
}

function overwrite(file: string, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(fd);
  }
}

describe('database faults on sqlite', () => {
  let suite: SuiteEnvironment;
  let running: RunningApp;
  let account: Credentials;
  let fault: SqliteDiskFault;

  beforeAll(async () => {
    suite = await createSuiteEnvironment('sqlite');
    running = await startSampleApp(suite.env);
    account = await signUp(running);
    fault = new SqliteDiskFault(suite.database.url.slice('sqlite:'.length));
  });
  afterAll(async () => {
    fault?.restore();
    await running?.close();
    await suite?.cleanup();
  });

  it('fails closed while the files are unreadable, and recovers by itself once they are back', async () => {
    const seen = (await logIn(running, account)).access_token;
    await running.http().get('/me').set('Authorization', `Bearer ${seen}`).expect(200);
    const unseen = (await logIn(running, account)).access_token;
    const { refresh_token } = await logIn(running, account);

    // Nothing runs between these synchronous steps: the app lives in this process.
    fault.break();
    try {
      expectUnavailable(await running.http().post('/auth/token').send(pick(account)));
      expectUnavailable(
        await running
          .http()
          .post('/auth/token')
          .send({ ...pick(account), password: 'wrong password!' }),
      );
      expectUnavailable(await running.http().post('/auth/refresh').send({ refresh_token }));
      expectUnavailable(
        await running
          .http()
          .post('/accounts')
          .send({ username: 'during-fault', password: 'correct horse battery staple' }),
      );
      expectNotServed(await running.http().get('/me').set('Authorization', `Bearer ${unseen}`));

      // Once the revocation view is stale, even a token verified before is refused.
      await sleep(MAX_STALENESS_MS + 700);
      const stale = await running.http().get('/me').set('Authorization', `Bearer ${seen}`);
      expectUnavailable(stale);
      expectNotServed(await running.http().get('/me').set('Authorization', `Bearer ${unseen}`));
    } finally {
      fault.restore();
    }

    const recovered = await eventually(async () => {
      const res = await running.http().post('/auth/token').send(pick(account));
      return res.status === 200;
    });
    expect(recovered).toBe(true);
    const meBack = await eventually(async () => {
      const res = await running.http().get('/me').set('Authorization', `Bearer ${unseen}`);
      return res.status === 200;
    });
    expect(meBack).toBe(true);
    await running.http().get('/me').set('Authorization', `Bearer ${seen}`).expect(200);
    await running.http().post('/auth/refresh').send({ refresh_token }).expect(200);
    await running.http().get('/health').expect(200);
    // The sign-up refused during the fault did not happen; it can be made now.
    await signUp(running, 'during-fault');
  }, 40000);

  it('answers 503 while another connection holds the write lock, then recovers', async () => {
    const other = new Database(suite.database.url.slice('sqlite:'.length));
    other.exec('BEGIN IMMEDIATE');
    try {
      const started = Date.now();
      // A login writes (lockout reset, token records): it waits for the lock, then gives up.
      expectUnavailable(await running.http().post('/auth/token').send(pick(account)));
      expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await running.http().post('/auth/token').send(pick(account)).expect(200);
  }, 30000);
});

// PostgreSQL only when it answers (the global set-up reports it otherwise, and fails with CI=true).
const withPostgres = isAvailable('postgres') ? (['postgres'] as const) : [];
if (withPostgres.length > 0) {
  describe.each(withPostgres)('database faults on %s', (kind) => {
    let suite: SuiteEnvironment;
    let running: RunningApp;
    let account: Credentials;
    let dbName: string;
    const admin = (sql: string) => pgAdmin(process.env.TEST_POSTGRES_URL!, sql);
    const terminate = () =>
      admin(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${dbName}' AND pid <> pg_backend_pid()`,
      );

    beforeAll(async () => {
      suite = await createSuiteEnvironment(kind);
      dbName = new URL(suite.database.url).pathname.slice(1);
      expect(dbName).toMatch(/^tfa_[0-9a-f]+$/);
      running = await startSampleApp(suite.env);
      account = await signUp(running);
    });
    afterAll(async () => {
      await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`).catch(() => undefined);
      await running?.close();
      await suite?.cleanup();
    });

    it('reconnects by itself after its connections are terminated', async () => {
      await logIn(running, account);
      await terminate();
      // The pool drops the dead connections and opens new ones; at worst one request fails.
      const statuses: number[] = [];
      const ok = await eventually(async () => {
        const res = await running.http().post('/auth/token').send(pick(account));
        statuses.push(res.status);
        if (res.status !== 200) expectUnavailable(res);
        return res.status === 200;
      }, 5000);
      expect({ ok, statuses: statuses.slice(0, -1).filter((s) => s !== 503) }).toEqual({
        ok: true,
        statuses: [],
      });
    });

    it('answers 503 while connections are refused, and recovers when they are allowed', async () => {
      const seen = (await logIn(running, account)).access_token;
      await running.http().get('/me').set('Authorization', `Bearer ${seen}`).expect(200);
      const unseen = (await logIn(running, account)).access_token;
      const { refresh_token } = await logIn(running, account);

      await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
      try {
        await terminate();
        for (let i = 0; i < 3; i++) {
          expectUnavailable(await running.http().post('/auth/token').send(pick(account)));
        }
        expectUnavailable(await running.http().post('/auth/refresh').send({ refresh_token }));
        expectNotServed(await running.http().get('/me').set('Authorization', `Bearer ${unseen}`));
        await sleep(MAX_STALENESS_MS + 700);
        expectUnavailable(await running.http().get('/me').set('Authorization', `Bearer ${seen}`));
      } finally {
        await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
      }

      const recovered = await eventually(async () => {
        const res = await running.http().post('/auth/token').send(pick(account));
        return res.status === 200;
      });
      expect(recovered).toBe(true);
      const meBack = await eventually(async () => {
        const res = await running.http().get('/me').set('Authorization', `Bearer ${unseen}`);
        return res.status === 200;
      });
      expect(meBack).toBe(true);
      await running.http().get('/me').set('Authorization', `Bearer ${seen}`).expect(200);
      await running.http().post('/auth/refresh').send({ refresh_token }).expect(200);
    }, 40000);

    it('answers 503 within the staleness bound to a new token while the database stops answering (a partition), and recovers when it answers again', async () => {
      const direct = new URL(suite.database.url);
      const proxy = await startStallingProxy(direct.hostname, Number(direct.port || 5432));
      const through = new URL(suite.database.url);
      through.host = `127.0.0.1:${proxy.port}`;
      const partitioned = await startSampleApp({ ...suite.env, DATABASE_URL: through.toString() });
      const me = (token: string) =>
        partitioned
          .http()
          .get('/me')
          .set('Authorization', `Bearer ${token}`)
          .timeout(MAX_STALENESS_MS + 5000);
      try {
        const unseen = (await logIn(partitioned, account)).access_token;
        proxy.stall();
        const started = Date.now();
        // Its record must be read (first sight), and the read gets no answer: 503, in time.
        expectUnavailable(await me(unseen));
        expect(Date.now() - started).toBeLessThan(MAX_STALENESS_MS + 2000);
        proxy.resume();
        expect(await eventually(async () => (await me(unseen)).status === 200)).toBe(true);
      } finally {
        proxy.resume();
        await partitioned.close();
        await proxy.close();
      }
    }, 40000);
  });
}

const withMariadb = isAvailable('mariadb') ? (['mariadb'] as const) : [];
if (withMariadb.length > 0) {
  describe.each(withMariadb)('database faults on %s', (kind) => {
    let suite: SuiteEnvironment;
    let running: RunningApp;
    let account: Credentials;

    beforeAll(async () => {
      suite = await createSuiteEnvironment(kind);
      running = await startSampleApp(suite.env);
      account = await signUp(running);
    });
    afterAll(async () => {
      await running?.close();
      await suite?.cleanup();
    });

    it('reconnects by itself after its connections are killed', async () => {
      const { access_token } = await logIn(running, account);
      const dbName = new URL(suite.database.url).pathname.slice(1);
      expect(dbName).toMatch(/^tfa_[0-9a-f]+$/);
      const conn = await mysql.createConnection({ uri: process.env.TEST_MARIADB_URL! });
      let killed = 0;
      try {
        const [rows] = await conn.query(
          'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
          [dbName],
        );
        for (const { id } of rows as { id: number }[]) {
          await conn.query(`KILL CONNECTION ${Number(id)}`).catch(() => undefined);
          killed++;
        }
      } finally {
        await conn.end();
      }
      expect(killed).toBeGreaterThan(0);
      const statuses: number[] = [];
      const ok = await eventually(async () => {
        const res = await running.http().post('/auth/token').send(pick(account));
        statuses.push(res.status);
        if (res.status !== 200) expectUnavailable(res);
        return res.status === 200;
      }, 5000);
      expect({ ok, statuses: statuses.slice(0, -1).filter((s) => s !== 503) }).toEqual({
        ok: true,
        statuses: [],
      });
      const fresh = (await logIn(running, account)).access_token;
      for (const token of [access_token, fresh]) {
        const me = await eventually(async () => {
          const res = await running.http().get('/me').set('Authorization', `Bearer ${token}`);
          if (res.status !== 200) expectNotServed(res);
          return res.status === 200;
        }, 5000);
        expect(me).toBe(true);
      }
    });
  });
}
