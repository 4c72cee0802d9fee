import { setTimeout as sleep } from 'node:timers/promises';
import {
  QueryFailedError,
  type DataSource,
  type EntityManager,
  type EntityMetadata,
} from 'typeorm';
import { retryOnConflict } from './conflict-retry.js';
import { dialectOf } from './dialect.js';
import {
  SqliteWriter,
  type ChainSigning,
  type SqliteConnection,
  type WriterError,
  type WriterOutcome,
} from './sqlite-writer.js';

/** A row as a driver returns it: column alias → value. */
export type RawRow = Record<string, unknown>;

/** One write of a `chain`: its SQL, its values and how many rows it must change to go on. */
export interface ChainedWrite {
  sql: string;
  params: unknown[];
  /** Stop the chain (and write nothing after it) unless this statement changed `need` rows. */
  need?: number;
}

/**
 * A read that must hold once a chain's writes are in (`RawQuery.checkedChain`): `holds` judges
 * the first row of `sql` (or `null` when it returns none).
 */
export interface ChainCheck {
  sql: string;
  params: unknown[];
  holds(row: RawRow | null): boolean;
}

/** What a checked chain did: the rows each write changed, and how its check came out. */
export interface CheckedChain {
  changed: number[];
  /** `null` when the chain stopped at a `need` (the check did not run). */
  holds: boolean | null;
  /**
   * The signatures asked for with `checkedChain`'s `sign`, when a writer thread made them after
   * the commit; absent otherwise (other paths, a stopped chain): the caller signs itself.
   */
  signatures?: Uint8Array[];
}

/** The part of a better-sqlite3 `Database` and `Statement` that `RawQuery` uses. */
interface SqliteStatement {
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}
interface SqliteDatabase extends SqliteConnection {
  readonly open: boolean;
  /** True while a transaction is open on the connection (an application's, through TypeORM). */
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  /** A function that runs `fn` in a transaction (a savepoint when nested), or `.immediate()`. */
  transaction<T>(fn: () => T): (() => T) & { immediate(): T };
}

/** Prepared statements per better-sqlite3 connection (a reconnected DataSource starts anew). */
const statementCaches = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();
/** The hot paths use a few dozen statements; the cap only guards against misuse. */
const STATEMENT_CACHE_SIZE = 200;

/**
 * Hand-written statements on the hot paths (a refresh, a login's rows, the first sight of a token). TypeORM's
 * `find` with relations costs about 250 µs of CPU per call on SQLite, the same query through
 * `query()` about 10 µs: on a path run thousands of times a second, that is the difference.
 * Statements are written with `?` placeholders and numbered for PostgreSQL; identifiers are
 * lower-case snake case, the same unquoted on every database. Values come back as the driver
 * gives them: read them with `num`, `bool` and `str`.
 *
 * On better-sqlite3 the statements run on TypeORM's own connection but without a query runner
 * per call: each is prepared once per connection and kept (TypeORM prepares it again for every
 * runner). They go to TypeORM's logger as its runner's do (it decides what `logging` shows),
 * and fail as TypeORM's `QueryFailedError`, as through `query()`.
 */
export class RawQuery {
  private readonly numbered: boolean;
  private readonly sqlite: boolean;
  /** How long SQLite writes wait for the file (better-sqlite3's `timeout`, 5 s by default). */
  readonly busyTimeout: number;

  constructor(private readonly dataSource: DataSource) {
    const dialect = dialectOf(dataSource);
    this.numbered = dialect === 'postgres';
    this.sqlite = dataSource.options.type === 'better-sqlite3';
    const timeout = (dataSource.options as { timeout?: unknown }).timeout;
    this.busyTimeout = typeof timeout === 'number' && timeout >= 0 ? timeout : 5000;
  }

  /** The rows of a SELECT. */
  async rows(sql: string, params: unknown[]): Promise<RawRow[]> {
    const db = this.connection();
    if (db) {
      // With the writer thread, a read inside an application's open transaction would see that
      // transaction's frozen view, not what the thread committed since (a spent refresh token
      // as unspent, a new token as unknown): such reads wait for it to end, as writes on the
      // event loop's path do (at most the busy timeout, then a QueryFailedError: 503).
      if (db.inTransaction && this.writer(db)) {
        do {
          await untilNoTransaction(db, this.busyTimeout);
        } while (db.inTransaction);
      }
      return this.direct(db, sql, params, (stmt, values) => stmt.all(...values) as RawRow[]);
    }
    return (await this.dataSource.query(
      this.numbered ? numberPlaceholders(sql) : sql,
      params,
    )) as RawRow[];
  }

  /** Runs an INSERT, UPDATE or DELETE; returns the number of rows it changed. */
  async run(sql: string, params: unknown[]): Promise<number> {
    if (this.connection()) return (await this.chain([{ sql, params }]))[0];
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(
        this.numbered ? numberPlaceholders(sql) : sql,
        params,
        true,
      );
      return result.affected ?? 0;
    } finally {
      await runner.release();
    }
  }

  /** The first row of a SELECT, or `null`. */
  async row(sql: string, params: unknown[]): Promise<RawRow | null> {
    return (await this.rows(sql, params))[0] ?? null;
  }

  /**
   * Runs `writes` in order and stops after one that did not change its `need` rows; returns the
   * rows each statement that ran changed.
   *
   * On SQLite a chain is all or nothing (one that fails or stops at a `need` is undone, the
   * writes before it included), and chains share commits: those submitted in the same turn of
   * the event loop run in one `BEGIN IMMEDIATE` transaction, each in a savepoint of its own (a
   * chain undone is undone alone), and every caller learns its result only after the one
   * commit (group commit: one sync of the file for many requests, on the event loop). A group
   * never joins a transaction of the application open on the connection: it waits for its end
   * (see `untilNoTransaction`).
   * On the servers each statement commits by itself, retried on a conflict, as `run` does: a
   * caller must already be right with any prefix of the chain written alone.
   *
   * With the `manager` of a transaction, the statements run in that transaction instead, in
   * order and without retries, on every database.
   */
  async chain(writes: readonly ChainedWrite[], manager?: EntityManager): Promise<number[]> {
    const runner = manager?.queryRunner;
    if (runner) {
      // In the caller's transaction, as asked: it commits (or not) with the rest of it.
      return inOrder(writes, async (write) => {
        const sql = this.numbered ? numberPlaceholders(write.sql) : write.sql;
        const result = (await runner.query(sql, write.params, true)) as { affected?: number };
        return result.affected ?? 0;
      });
    }
    const db = this.connection();
    if (db) return (await groupCommit(db, writes, this)).changed;
    return this.writeApart(writes);
  }

  /**
   * `chain`, then `check` once every write went through (not after a chain stopped at a `need`).
   * On SQLite the check runs right after the chain's writes, in the group's transaction (no
   * read transaction of its own); on the servers it reads after the writes committed. Either
   * way the writes stay, whatever the check says, and whatever commits meanwhile either shows
   * to the check or comes after the writes: the caller decides what a failed check undoes.
   * With `sign`, a writer thread (SQLite in WAL mode) signs its inputs after the commit, on
   * its own CPU instead of the event loop's (`signatures`); elsewhere the caller signs.
   */
  async checkedChain(
    writes: readonly ChainedWrite[],
    check: ChainCheck,
    sign?: ChainSigning,
  ): Promise<CheckedChain> {
    const db = this.connection();
    if (db) return groupCommit(db, writes, this, check, sign);
    const changed = await this.writeApart(writes);
    if (!wentThrough(writes, changed)) return { changed, holds: null };
    return { changed, holds: check.holds(await this.row(check.sql, check.params)) };
  }

  /**
   * `chain`, all or nothing on every database: on SQLite as `chain` (a savepoint of a group
   * commit), on the servers in a transaction of its own, retried whole on a conflict. A write
   * that does not change its `need` rows undoes the writes before it; the rows each statement
   * that ran changed are returned, and the caller reads from them whether it went through.
   * A conditional first write (`need`) takes the row's lock on the servers: a racing chain
   * with the same condition waits for this one's commit, then finds the condition false.
   */
  async atomicChain(writes: readonly ChainedWrite[]): Promise<number[]> {
    if (this.connection()) return this.chain(writes);
    let changed: number[] = [];
    try {
      await retryOnConflict(() =>
        this.dataSource.transaction(async (manager) => {
          changed = await this.chain(writes, manager);
          if (!wentThrough(writes, changed)) throw ROLLBACK;
        }),
      );
    } catch (error) {
      if (error !== ROLLBACK) throw error;
    }
    return changed;
  }

  /** The servers' chain: each write commits by itself, retried on a conflict. */
  private writeApart(writes: readonly ChainedWrite[]): Promise<number[]> {
    return inOrder(writes, (write) => retryOnConflict(() => this.run(write.sql, write.params)));
  }

  /** An identifier of the application's schema (a table or column name), quoted for the driver. */
  escape(name: string): string {
    return this.dataSource.driver.escape(name);
  }

  /** An entity's table, quoted (with its schema, if any). */
  table(entity: EntityMetadata): string {
    return entity.tablePath
      .split('.')
      .map((part) => this.escape(part))
      .join('.');
  }

  /** The column of an entity's `property`, quoted. */
  column(entity: EntityMetadata, property: string): string {
    return this.escape(entity.findColumnWithPropertyName(property)!.databaseName);
  }

  /**
   * Runs a chain on `db` now, inside a transaction: its writes, then its check, if any, once
   * every write went through.
   */
  runChain(db: SqliteDatabase, writes: readonly ChainedWrite[], check?: ChainCheck): CheckedChain {
    const changed: number[] = [];
    for (const write of writes) {
      const n = this.direct(
        db,
        write.sql,
        write.params,
        (stmt, values) => stmt.run(...values).changes,
      );
      changed.push(n);
      if (write.need !== undefined && n !== write.need) return { changed, holds: null };
    }
    if (!check) return { changed, holds: null };
    const [row] = this.direct(db, check.sql, check.params, (stmt, values) => stmt.all(...values));
    return { changed, holds: check.holds((row as RawRow | undefined) ?? null) };
  }

  /**
   * The thread that runs this connection's group commits (`SqliteWriter`), or `null` when they
   * run on the event loop: the in-thread path stays for what a second connection cannot share.
   */
  writer(db: SqliteDatabase): SqliteWriter | null {
    const options = this.dataSource.options as unknown as Record<string, unknown>;
    return SqliteWriter.for(db, options, this.busyTimeout);
  }

  /** Stops the writer thread of this DataSource's SQLite connection, if it has one. */
  closeWriter(): Promise<void> {
    if (!this.sqlite) return Promise.resolve();
    // Whether or not TypeORM has closed its connection already: the writer is known by it.
    const db = (this.dataSource.driver as unknown as { databaseConnection?: SqliteDatabase })
      .databaseConnection;
    return SqliteWriter.closeFor(db ?? null);
  }

  /** Logs a statement as TypeORM's runner would (when `logging` says so). */
  logQuery(sql: string, params: unknown[]): void {
    this.dataSource.logger.logQuery(sql, params);
  }

  /** A driver error of `sql` as TypeORM's runner reports it: logged, a `QueryFailedError`. */
  queryFailed(error: Error, sql: string, params: unknown[]): QueryFailedError {
    this.dataSource.logger.logQueryError(error, sql, params);
    return new QueryFailedError(sql, params, error);
  }

  /** TypeORM's open better-sqlite3 connection, when that is the driver. */
  private connection(): SqliteDatabase | null {
    if (!this.sqlite) return null;
    const db = (this.dataSource.driver as unknown as { databaseConnection?: SqliteDatabase })
      .databaseConnection;
    return db?.open ? db : null;
  }

  private statement(db: SqliteDatabase, sql: string): SqliteStatement {
    let cache = statementCaches.get(db);
    if (!cache) statementCaches.set(db, (cache = new Map()));
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    }
    return stmt;
  }

  /** Runs one statement as TypeORM's runner would: logged, its error a `QueryFailedError`. */
  direct<T>(
    db: SqliteDatabase,
    sql: string,
    params: unknown[],
    execute: (stmt: SqliteStatement, values: unknown[]) => T,
  ): T {
    const values = bindable(params);
    this.logQuery(sql, values);
    try {
      return execute(this.statement(db, sql), values);
    } catch (error) {
      throw this.queryFailed(error as Error, sql, values);
    }
  }
}

/** Thrown inside a chain's savepoint to undo a chain that stopped at a `need`. */
class StoppedChain {
  constructor(readonly outcome: CheckedChain) {}
}

/** Thrown inside `atomicChain`'s transaction to undo a chain that stopped at a `need`. */
const ROLLBACK = new Error('chain stopped');

/** Whether every write of a chain ran and changed the rows it needed (it did not stop). */
export function wentThrough(writes: readonly ChainedWrite[], changed: readonly number[]): boolean {
  return (
    changed.length === writes.length &&
    writes.every((write, i) => write.need === undefined || changed[i] === write.need)
  );
}

/** Runs `writes` one after the other, stopping after one that did not change its `need` rows. */
async function inOrder(
  writes: readonly ChainedWrite[],
  run: (write: ChainedWrite) => Promise<number>,
): Promise<number[]> {
  const changed: number[] = [];
  for (const write of writes) {
    const n = await run(write);
    changed.push(n);
    if (write.need !== undefined && n !== write.need) break;
  }
  return changed;
}

/** A chain waiting for the next group commit. */
interface PendingChain {
  raw: RawQuery;
  writes: readonly ChainedWrite[];
  check: ChainCheck | undefined;
  sign: ChainSigning | undefined;
  resolve(result: CheckedChain): void;
  reject(error: unknown): void;
}

/** The chains submitted on each connection since its last group commit was scheduled. */
const pendingChains = new WeakMap<SqliteDatabase, PendingChain[]>();

function groupCommit(
  db: SqliteDatabase,
  writes: readonly ChainedWrite[],
  raw: RawQuery,
  check?: ChainCheck,
  sign?: ChainSigning,
): Promise<CheckedChain> {
  return new Promise((resolve, reject) => {
    let pending = pendingChains.get(db);
    if (!pending) {
      pendingChains.set(db, (pending = []));
      // After the I/O callbacks of this turn: every chain they submitted shares the commit.
      setImmediate(() => void commitPending(db, pending!));
    }
    pending.push({ raw, writes, check, sign, resolve, reject });
  });
}

async function commitPending(db: SqliteDatabase, chains: PendingChain[]): Promise<void> {
  pendingChains.delete(db);
  const raw = chains[0].raw;
  const writer = raw.writer(db);
  if (writer) return commitOnWriter(writer, chains);
  let outcomes: (CheckedChain | { error: unknown })[] = [];
  try {
    // Checked again once resumed, in the same synchronous stretch as the BEGIN below: a
    // transaction begun by a microtask between the wait's end and here is waited for too.
    do {
      await untilNoTransaction(db, raw.busyTimeout);
    } while (db.inTransaction);
    const transaction = db.transaction(() => {
      outcomes = chains.map(({ raw, writes, check }) => {
        try {
          // A nested transaction function is a savepoint: a chain that fails is undone alone.
          return db.transaction(() => {
            const outcome = raw.runChain(db, writes, check);
            // A chain that stops is undone, the writes before it included.
            if (!wentThrough(writes, outcome.changed)) throw new StoppedChain(outcome);
            return outcome;
          })();
        } catch (error) {
          if (error instanceof StoppedChain) return error.outcome;
          return { error };
        }
      });
    });
    try {
      transaction.immediate();
    } catch (error) {
      if (error instanceof QueryFailedError) throw error;
      throw new QueryFailedError('BEGIN IMMEDIATE', [], beginError(error as WriterError, raw));
    }
  } catch (error) {
    // Nothing was committed: every chain of the group fails with the same error.
    for (const chain of chains) chain.reject(error);
    return;
  }
  chains.forEach((chain, i) => {
    const outcome = outcomes[i];
    if ('error' in outcome) chain.reject(outcome.error);
    else chain.resolve(outcome);
  });
}

/**
 * A group commit on the writer thread. Its connection is not TypeORM's, so a transaction the
 * application holds open there is not joined: the group waits for the file's lock only if that
 * transaction has written (the busy timeout, then `SQLITE_BUSY_TIMEOUT`), on the thread, while
 * the event loop goes on. Statements are logged here, as on the event loop's path.
 */
async function commitOnWriter(writer: SqliteWriter, chains: PendingChain[]): Promise<void> {
  const raw = chains[0].raw;
  const sent = chains.map(({ writes, check, sign }) => ({
    writes: writes.map((write) => ({
      sql: write.sql,
      params: bindable(write.params),
      ...(write.need === undefined ? {} : { need: write.need }),
    })),
    ...(check ? { check: { sql: check.sql, params: bindable(check.params) } } : {}),
    ...(sign ? { sign } : {}),
  }));
  for (const chain of sent) {
    for (const write of chain.writes) raw.logQuery(write.sql, write.params);
    if (chain.check) raw.logQuery(chain.check.sql, chain.check.params);
  }
  let outcomes: WriterOutcome[];
  try {
    outcomes = await writer.run(sent, Date.now() + raw.busyTimeout);
  } catch (error) {
    // Nothing was committed: every chain of the group fails with the same error.
    const failure = raw.queryFailed(beginError(error as WriterError, raw), 'BEGIN IMMEDIATE', []);
    for (const chain of chains) chain.reject(failure);
    return;
  }
  chains.forEach((chain, i) => {
    const outcome = outcomes[i];
    if ('error' in outcome) {
      const { sql = 'SAVEPOINT', params = [] } = outcome.error;
      chain.reject(raw.queryFailed(driverError(outcome.error), sql, params));
      return;
    }
    const checked = chain.check !== undefined && !outcome.stopped;
    chain.resolve({
      changed: outcome.changed,
      holds: checked ? chain.check!.holds(outcome.row) : null,
      ...(outcome.signatures ? { signatures: outcome.signatures } : {}),
    });
  });
}

/** A driver error rebuilt from what crossed the thread: its message and SQLite code. */
function driverError({ message, code }: WriterError): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

/**
 * The error of a group that could not begin. BEGIN IMMEDIATE that found the file locked by
 * another connection for the whole busy timeout (better-sqlite3 waited for it) is final, so
 * that no caller waits as long again: `SQLITE_BUSY_TIMEOUT`.
 */
function beginError(error: WriterError, raw: RawQuery): Error {
  return error.code === 'SQLITE_BUSY'
    ? Object.assign(new Error(`database busy for over ${raw.busyTimeout} ms`), {
        code: 'SQLITE_BUSY_TIMEOUT',
      })
    : error instanceof Error
      ? error
      : driverError(error);
}

/**
 * Waits while a transaction of the application is open on the connection (TypeORM runs every
 * query of an SQLite DataSource on this one connection, and a transaction may await other I/O
 * between its statements). A group begun meanwhile would become a savepoint of it: committed
 * only with it, and undone by its rollback after the callers had their answers, a spent refresh
 * token or a counted failure coming back to life. So the group waits, as a second connection
 * would wait for the file's lock, for at most the connection's busy timeout; then it fails
 * (the requests answer 503) with nothing written.
 */
async function untilNoTransaction(db: SqliteDatabase, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (db.inTransaction) {
    if (Date.now() >= deadline) {
      throw new QueryFailedError(
        'BEGIN IMMEDIATE',
        [],
        new Error(
          `database busy: a transaction of the application stayed open on the SQLite connection for over ${timeoutMs} ms`,
        ),
      );
    }
    await sleep(1);
  }
}

/** better-sqlite3 binds no booleans: 1 and 0, as TypeORM passes them. */
function bindable(params: unknown[]): unknown[] {
  return params.some((p) => typeof p === 'boolean')
    ? params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p))
    : params;
}

function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A BIGINT or INTEGER column (drivers return BIGINT as a string). */
export function num(value: unknown): number {
  return Number(value);
}

/**
 * A BOOLEAN column: `true`/`false` on PostgreSQL, `1`/`0` elsewhere, read as TypeORM reads it
 * (anything but false, 0 and NULL is true), so that a flag written as 2 or -1 by another tool
 * means the same on the hot paths as at login.
 */
export function bool(value: unknown): boolean {
  return value !== null && value !== undefined && value !== false && Number(value) !== 0;
}

/** A string column, or an id of any type in its string form; `null` stays `null`. */
export function str(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
