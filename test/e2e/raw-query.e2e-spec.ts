/**
 * RawQuery, the hand-written statements of the hot paths, on each real database: `chain` stops
 * where a statement did not change its rows, is one all-or-nothing transaction on SQLite, and
 * on better-sqlite3 statements are prepared once per connection, logged when TypeORM logs, and
 * fail as TypeORM's `QueryFailedError`. SQLite runs twice: with its default rollback journal
 * (group commits on the event loop) and in WAL mode (group commits on the writer thread).
 */
import { generateKeyPairSync, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import { DataSource, QueryFailedError, type Logger as TypeOrmLogger } from 'typeorm';
import { jest } from '@jest/globals';
import { RawQuery } from '../../lib/core/database/raw-query.js';
import { SqliteWriter } from '../../lib/core/database/sqlite-writer.js';
import { createTestDatabase, databases, type TestDatabase } from '../support/servers.js';

type Variant = 'sqlite' | 'sqlite-wal' | 'postgres' | 'mariadb';

function dataSourceOf(
  db: TestDatabase,
  logger?: TypeOrmLogger,
  sqlite: { wal?: boolean; timeout?: number } = {},
): DataSource {
  const common = { entities: [], ...(logger ? { logging: true as const, logger } : {}) };
  if (db.kind === 'sqlite') {
    return new DataSource({
      ...common,
      type: 'better-sqlite3',
      database: db.url.slice('sqlite:'.length),
      ...(sqlite.wal ? { enableWAL: true } : {}),
      ...(sqlite.timeout === undefined ? {} : { timeout: sqlite.timeout }),
    });
  }
  if (db.kind === 'postgres') return new DataSource({ ...common, type: 'postgres', url: db.url });
  return new DataSource({ ...common, type: 'mysql', url: db.url });
}

/** The part of better-sqlite3 used here (the package ships no types of its own). */
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => {
  exec(sql: string): void;
  close(): void;
};

const INSERT = 'INSERT INTO rq_items (id, n, flag) VALUES (?, ?, ?)';

const VARIANTS: Variant[] = databases().flatMap((kind): Variant[] =>
  kind === 'sqlite' ? ['sqlite', 'sqlite-wal'] : [kind],
);

describe.each(VARIANTS)('RawQuery on %s', (variant) => {
  const kind = variant === 'sqlite-wal' ? 'sqlite' : variant;
  const wal = variant === 'sqlite-wal';
  let db: TestDatabase;
  let source: DataSource;
  let raw: RawQuery;

  const ids = async () =>
    (await raw.rows('SELECT id FROM rq_items ORDER BY id', [])).map((r) => String(r.id));

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    source = await dataSourceOf(db, undefined, { wal }).initialize();
    await source.query(
      'CREATE TABLE rq_items (id VARCHAR(10) PRIMARY KEY, n INTEGER NOT NULL, flag INTEGER)',
    );
    raw = new RawQuery(source);
  });
  afterAll(async () => {
    await raw?.closeWriter();
    await source?.destroy();
    await db?.drop();
  });
  beforeEach(async () => {
    await source.query('DELETE FROM rq_items');
  });

  it('runs a chain in order and reports the rows each statement changed', async () => {
    await raw.run(INSERT, ['a', 1, 0]);
    const changed = await raw.chain([
      { sql: 'UPDATE rq_items SET n = n + 1 WHERE id = ?', params: ['a'], need: 1 },
      { sql: INSERT, params: ['b', 2, 0] },
    ]);
    expect(changed).toEqual([1, 1]);
    expect(await ids()).toEqual(['a', 'b']);
    expect(Number((await raw.row('SELECT n FROM rq_items WHERE id = ?', ['a']))!.n)).toBe(2);
  });

  it('writes nothing after a statement that did not change the rows it needed', async () => {
    const changed = await raw.chain([
      { sql: 'UPDATE rq_items SET n = n + 1 WHERE id = ?', params: ['missing'], need: 1 },
      { sql: INSERT, params: ['b', 2, 0] },
    ]);
    expect(changed).toEqual([0]);
    expect(await ids()).toEqual([]);
  });

  it('of many chains racing to spend one row, exactly one goes on', async () => {
    await raw.run(INSERT, ['a', 0, 0]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        raw.chain([
          { sql: 'UPDATE rq_items SET n = 1 WHERE id = ? AND n = 0', params: ['a'], need: 1 },
          { sql: INSERT, params: [`w${String(i).padStart(2, '0')}`, i, 0] },
        ]),
      ),
    );
    expect(results.filter((r) => r.length === 2)).toHaveLength(1);
    expect(await ids()).toHaveLength(2);
  });

  it('checks a chain once its writes are in, and keeps the writes whatever the check says', async () => {
    await raw.run(INSERT, ['a', 0, 0]);
    // The check sees the chain's own writes, and holds.
    const seen: unknown[] = [];
    const kept = await raw.checkedChain(
      [
        { sql: 'UPDATE rq_items SET n = 1 WHERE id = ? AND n = 0', params: ['a'], need: 1 },
        { sql: INSERT, params: ['b', 2, 0] },
      ],
      {
        sql: 'SELECT COUNT(*) AS c FROM rq_items WHERE n > 0',
        params: [],
        holds: (row) => {
          seen.push(Number(row?.c));
          return true;
        },
      },
    );
    expect(kept).toEqual({ changed: [1, 1], holds: true });
    expect(seen).toEqual([2]);
    expect(await ids()).toEqual(['a', 'b']);

    // A check that fails says so; the writes stay (the caller decides what to undo), the same
    // on every database.
    const failed = await raw.checkedChain(
      [
        { sql: 'UPDATE rq_items SET n = 5 WHERE id = ?', params: ['a'], need: 1 },
        { sql: INSERT, params: ['c', 3, 0] },
      ],
      { sql: 'SELECT id FROM rq_items WHERE id = ?', params: ['nobody'], holds: (row) => !!row },
    );
    expect(failed).toEqual({ changed: [1, 1], holds: false });
    expect(await ids()).toEqual(['a', 'b', 'c']);
    expect(Number((await raw.row('SELECT n FROM rq_items WHERE id = ?', ['a']))!.n)).toBe(5);

    // A chain stopped at its `need` runs no check.
    let checked = false;
    const stopped = await raw.checkedChain(
      [{ sql: 'UPDATE rq_items SET n = 9 WHERE id = ?', params: ['missing'], need: 1 }],
      {
        sql: 'SELECT 1 AS one',
        params: [],
        holds: () => (checked = true),
      },
    );
    expect(stopped).toEqual({ changed: [0], holds: null });
    expect(checked).toBe(false);
  });

  if (kind === 'sqlite') {
    it('on SQLite checks read inside the group commit, each after its own chain', async () => {
      const counts: Record<string, number> = {};
      const results = await Promise.all(
        ['p', 'q', 'r', 's'].map((id) =>
          raw.checkedChain([{ sql: INSERT, params: [id, 1, 0] }], {
            sql: 'SELECT COUNT(*) AS c FROM rq_items',
            params: [],
            holds: (row) => {
              counts[id] = Number(row?.c);
              return id !== 'q';
            },
          }),
        ),
      );
      expect(results.map((r) => r.holds)).toEqual([true, false, true, true]);
      // One transaction, chains in order: each check saw the chains before it and its own,
      // never the ones after it (a read after the commit would see all four).
      expect(counts).toEqual({ p: 1, q: 2, r: 3, s: 4 });
      expect(await ids()).toEqual(['p', 'q', 'r', 's']);
    });
  }

  it('fails with QueryFailedError and the statement, never a bare driver error', async () => {
    await raw.run(INSERT, ['a', 1, 0]);
    const failure = await raw.run(INSERT, ['a', 1, 0]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect((failure as QueryFailedError).query).toContain('INSERT INTO rq_items');
  });

  if (kind === 'sqlite') {
    it('on SQLite a chain is all or nothing: a failing statement undoes the ones before it', async () => {
      await raw.run(INSERT, ['a', 1, 0]);
      const failure = await raw
        .chain([
          { sql: 'UPDATE rq_items SET n = 99 WHERE id = ?', params: ['a'], need: 1 },
          { sql: INSERT, params: ['b', 2, 0] },
          { sql: INSERT, params: ['a', 3, 0] },
        ])
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(QueryFailedError);
      expect(await ids()).toEqual(['a']);
      expect(Number((await raw.row('SELECT n FROM rq_items WHERE id = ?', ['a']))!.n)).toBe(1);
    });

    it('on SQLite chains of one turn share one commit, and a failing chain is undone alone', async () => {
      const connection = (
        source.driver as unknown as {
          databaseConnection: {
            transaction: (fn: () => unknown) => (() => unknown) & { immediate(): unknown };
          };
        }
      ).databaseConnection;
      const transaction = connection.transaction.bind(connection);
      let commits = 0;
      connection.transaction = (fn) => {
        const wrapped = transaction(fn) as (() => unknown) & { immediate(): unknown };
        return Object.assign(() => wrapped(), {
          immediate: () => {
            commits++;
            return wrapped.immediate();
          },
        });
      };
      const groups = jest.spyOn(SqliteWriter.prototype, 'run');
      try {
        await raw.run(INSERT, ['dup', 0, 0]);
        commits = 0;
        groups.mockClear();
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) =>
            raw.chain([
              { sql: INSERT, params: [`c${i}`, i, 0] },
              // The fifth chain then collides with an existing row: it alone is undone.
              { sql: INSERT, params: [i === 5 ? 'dup' : `d${i}`, i, 0] },
            ]),
          ),
        );
        // On the event loop's connection, or on the writer thread's (WAL): one group either way.
        expect(commits).toBe(wal ? 0 : 1);
        if (wal) expect(groups.mock.calls).toHaveLength(1);
        expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
        expect((results[5] as PromiseRejectedResult).reason).toBeInstanceOf(QueryFailedError);
        const stored = await ids();
        expect(stored).toHaveLength(1 + 9 * 2);
        expect(stored).not.toContain('c5');
      } finally {
        connection.transaction = transaction;
        groups.mockRestore();
      }
    });

    it('on better-sqlite3 prepares each statement once per connection, and again after a reconnect', async () => {
      const connection = () =>
        (source.driver as unknown as { databaseConnection: { prepare(sql: string): unknown } })
          .databaseConnection;
      const count = () => {
        const db = connection();
        const prepare = db.prepare.bind(db);
        const seen: string[] = [];
        db.prepare = (sql: string) => {
          seen.push(sql);
          return prepare(sql);
        };
        return seen;
      };
      const sql = 'SELECT id, n FROM rq_items WHERE n >= ? ORDER BY id';
      await raw.run(INSERT, ['a', 1, 0]);
      const seen = count();
      for (let i = 0; i < 5; i++) expect(await raw.rows(sql, [0])).toHaveLength(1);
      expect(seen.filter((s) => s === sql)).toHaveLength(1);

      await source.destroy();
      await source.initialize();
      const again = count();
      expect(await raw.rows(sql, [0])).toHaveLength(1);
      expect(again.filter((s) => s === sql)).toHaveLength(1);
    });

    it('binds booleans as 1 and 0 and logs through TypeORM when logging is on', async () => {
      const logged: string[] = [];
      const logger: TypeOrmLogger = {
        logQuery: (query) => void logged.push(query),
        logQueryError: () => undefined,
        logQuerySlow: () => undefined,
        logSchemaBuild: () => undefined,
        logMigration: () => undefined,
        log: () => undefined,
      };
      const logging = await dataSourceOf(db, logger, { wal }).initialize();
      try {
        const withLog = new RawQuery(logging);
        await withLog.chain([
          { sql: INSERT, params: ['t', 1, true] },
          { sql: INSERT, params: ['f', 2, false] },
        ]);
        const flags = await withLog.rows('SELECT id, flag FROM rq_items ORDER BY id', []);
        expect(flags.map((r) => [r.id, Number(r.flag)])).toEqual([
          ['f', 0],
          ['t', 1],
        ]);
        expect(logged.filter((q) => q === INSERT)).toHaveLength(2);
        expect(logged).toContain('SELECT id, flag FROM rq_items ORDER BY id');
      } finally {
        await logging.destroy();
      }
    });
  }
  if (wal) {
    it('in WAL mode writes on its own thread: an application transaction that only read is not joined', async () => {
      let written: number[] = [];
      await source
        .transaction(async (manager) => {
          await manager.query('SELECT COUNT(*) AS c FROM rq_items');
          // Committed by the writer while the application's transaction is still open.
          written = await raw.chain([{ sql: INSERT, params: ['w1', 1, 0] }]);
          throw new Error('the application rolls back');
        })
        .catch(() => undefined);
      expect(written).toEqual([1]);
      expect(await ids()).toEqual(['w1']);
    });

    it('in WAL mode reads wait for an application transaction to end, never reading its frozen view', async () => {
      let reading: Promise<string[]> | undefined;
      await source.transaction(async (manager) => {
        // The transaction's read fixes its view of the file (WAL).
        await manager.query('SELECT COUNT(*) AS c FROM rq_items');
        // Committed by the writer thread meanwhile, outside that view.
        expect(await raw.chain([{ sql: INSERT, params: ['fresh', 1, 0] }])).toEqual([1]);
        reading = ids();
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(await Promise.race([reading, 'waiting'])).toBe('waiting');
      });
      // Once the application's transaction ended, the read sees what the writer committed.
      expect(await reading).toEqual(['fresh']);
    });

    it('in WAL mode waits for the lock of an application transaction that wrote, without blocking the event loop', async () => {
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      try {
        let chained: Promise<number[]> | undefined;
        await source.transaction(async (manager) => {
          await manager.query(INSERT, ['app', 1, 0]);
          chained = raw.chain([{ sql: INSERT, params: ['mod', 2, 0] }]);
          const before = ticks;
          await new Promise((resolve) => setTimeout(resolve, 200));
          // The module's write waits on its thread for the file's lock; timers keep firing.
          expect(ticks - before).toBeGreaterThan(10);
          const state = await Promise.race([chained, 'pending']);
          expect(state).toBe('pending');
        });
        expect(await chained).toEqual([1]);
        expect(await ids()).toEqual(['app', 'mod']);
      } finally {
        clearInterval(ticker);
      }
    });

    it('in WAL mode gives up after the busy timeout with SQLITE_BUSY_TIMEOUT and nothing written', async () => {
      const quick = await dataSourceOf(db, undefined, { wal: true, timeout: 300 }).initialize();
      const other = new Database(db.url.slice('sqlite:'.length));
      try {
        other.exec('BEGIN IMMEDIATE');
        const started = Date.now();
        const failure = await new RawQuery(quick)
          .chain([{ sql: INSERT, params: ['late', 1, 0] }])
          .catch((error: unknown) => error);
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(failure).toBeInstanceOf(QueryFailedError);
        expect((failure as { driverError: { code: string } }).driverError.code).toBe(
          'SQLITE_BUSY_TIMEOUT',
        );
        other.exec('ROLLBACK');
        expect(await ids()).toEqual([]);
        // The writer goes on once the lock is free.
        expect(await new RawQuery(quick).chain([{ sql: INSERT, params: ['now', 1, 0] }])).toEqual([
          1,
        ]);
      } finally {
        other.close();
        await new RawQuery(quick).closeWriter();
        await quick.destroy();
      }
    });

    it('in WAL mode syncs every commit of its writer (synchronous FULL), also after a restart on a WAL file', async () => {
      const synchronousOfWriter = async (raw: RawQuery) => {
        let row: Record<string, unknown> | null = null;
        await raw.checkedChain([], {
          sql: 'PRAGMA synchronous',
          params: [],
          holds: (r) => ((row = r), true),
        });
        return Number((row as Record<string, unknown> | null)?.synchronous);
      };
      expect(await synchronousOfWriter(raw)).toBe(2);
      // A connection that opens a file already in WAL mode starts at NORMAL (1): an
      // application's restart. The writer's commits stay synced.
      const restarted = await dataSourceOf(db, undefined, { wal: true }).initialize();
      const rawRestarted = new RawQuery(restarted);
      try {
        const main = (
          restarted.driver as unknown as {
            databaseConnection: { pragma(s: string, o: { simple: true }): unknown };
          }
        ).databaseConnection;
        expect(main.pragma('synchronous', { simple: true })).toBe(1);
        expect(await synchronousOfWriter(rawRestarted)).toBe(2);
      } finally {
        await rawRestarted.closeWriter();
        await restarted.destroy();
      }
    });

    it('in WAL mode signs on its thread after the commit, only for chains that went through, with each key', async () => {
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ed = generateKeyPairSync('ed25519');
      const check = { sql: 'SELECT COUNT(*) AS c FROM rq_items', params: [], holds: () => true };
      const signed = async (id: string, keys: typeof ec, hash: string | null, stop = false) =>
        raw.checkedChain(
          [
            stop
              ? { sql: 'UPDATE rq_items SET n = 2 WHERE id = ?', params: ['none'], need: 1 }
              : { sql: INSERT, params: [id, 1, 0] },
          ],
          check,
          {
            key: keys.privateKey,
            hash,
            ...(hash ? { dsaEncoding: 'ieee-p1363' as const } : {}),
            inputs: [`${id}.a`, `${id}.b`],
          },
        );
      const valid = (keys: typeof ec, hash: string | null, input: string, signature: Uint8Array) =>
        verify(
          hash,
          Buffer.from(input),
          hash ? { key: keys.publicKey, dsaEncoding: 'ieee-p1363' } : keys.publicKey,
          signature,
        );
      // Several groups, two keys, each key sent to the thread once and used again.
      for (const [i, [keys, hash]] of [
        [ec, 'sha256'],
        [ed, null],
        [ec, 'sha256'],
      ].entries() as IterableIterator<[number, [typeof ec, string | null]]>) {
        const result = await signed(`s${i}`, keys, hash);
        expect(result.holds).toBe(true);
        expect(result.signatures).toHaveLength(2);
        expect(valid(keys, hash, `s${i}.a`, result.signatures![0])).toBe(true);
        expect(valid(keys, hash, `s${i}.b`, result.signatures![1])).toBe(true);
        expect(valid(keys, hash, `s${i}.a`, result.signatures![1])).toBe(false);
      }
      // A chain that stopped at its condition is undone and gets no signature.
      const stopped = await signed('s3', ec, 'sha256', true);
      expect(stopped.holds).toBeNull();
      expect(stopped.signatures).toBeUndefined();
    });

    it('in WAL mode closes its writer on request, and later writes run on the event loop', async () => {
      const own = await dataSourceOf(db, undefined, { wal: true }).initialize();
      try {
        const rawOwn = new RawQuery(own);
        await rawOwn.chain([{ sql: INSERT, params: ['x1', 1, 0] }]);
        await rawOwn.closeWriter();
        const groups = jest.spyOn(SqliteWriter.prototype, 'run');
        try {
          await rawOwn.chain([{ sql: INSERT, params: ['x2', 1, 0] }]);
          expect(groups).not.toHaveBeenCalled();
        } finally {
          groups.mockRestore();
        }
        expect(await ids()).toEqual(['x1', 'x2']);
      } finally {
        await own.destroy();
      }
    });
  }

  if (variant === 'sqlite') {
    it('with a rollback journal keeps its group commits on the event loop (no writer thread)', async () => {
      const groups = jest.spyOn(SqliteWriter.prototype, 'run');
      try {
        await raw.chain([{ sql: INSERT, params: ['j', 1, 0] }]);
        expect(groups).not.toHaveBeenCalled();
      } finally {
        groups.mockRestore();
      }
    });
  }
});
