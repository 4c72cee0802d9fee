import { createRequire } from 'node:module';
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { SigningSpec } from '../keys/jws.util.js';

/** Inputs to sign once a chain has committed, with one key (`SigningSpec`). */
export type ChainSigning = SigningSpec & { inputs: string[] };

/**
 * One chain as the writer thread runs it: its writes, then the read of its check, if any;
 * with `sign`, the signatures of its inputs, made after the group's commit.
 */
export interface WriterChain {
  writes: { sql: string; params: unknown[]; need?: number }[];
  check?: { sql: string; params: unknown[] };
  sign?: ChainSigning;
}

/** A `WriterChain` as it crosses to the thread: the signing key by a number, sent once. */
type WireChain = Omit<WriterChain, 'sign'> & {
  sign?: Omit<ChainSigning, 'key'> & { keyId: number };
};

/** A driver error as it crosses the thread: its message, SQLite code and statement. */
export interface WriterError {
  message: string;
  code?: string;
  sql?: string;
  params?: unknown[];
}

/** What the thread did with one chain of a group. */
export type WriterOutcome =
  | {
      changed: number[];
      stopped: boolean;
      row: Record<string, unknown> | null;
      /** The signatures of `sign`'s inputs, made after the commit (none for a stopped chain). */
      signatures?: Uint8Array[];
    }
  | { error: WriterError };

/** The better-sqlite3 connection the writer stands beside (TypeORM's), as far as it is read. */
export interface SqliteConnection {
  readonly open: boolean;
  readonly memory: boolean;
  readonly name: string;
  pragma(source: string, options: { simple: true }): unknown;
}

/**
 * The code of the writer thread: its own better-sqlite3 connection to the same file, with the
 * main connection's busy timeout and `foreign_keys`, its `synchronous` but never below FULL,
 * and its temporary files (the savepoints' journals) in memory. Each message is a group of
 * chains: one `BEGIN IMMEDIATE` transaction, each chain in a savepoint of its own (a failing
 * chain is undone alone), its check read right after its writes, then one commit; then the
 * signatures asked for by the chains that went through (a token is signed only once its record
 * is committed). A message carries the signing keys the thread has not seen yet, by number. A
 * message `{ close: true }` closes the connection once the groups before it are done.
 */
const THREAD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { timeout: workerData.timeout });
// FULL at least: a commit of the module (a spent refresh token, a revocation, a lockout count)
// must survive a power loss. A connection that opens a file already in WAL mode starts at
// NORMAL (better-sqlite3's build), so the main connection's setting depends on whether this
// start or an earlier one switched the file to WAL.
db.pragma('synchronous = ' + Math.max(2, workerData.synchronous));
db.pragma('foreign_keys = ' + workerData.foreignKeys);
// Each chain runs in a savepoint, whose journal (the pages' content before the chain) is a
// temporary file by default: opened, written page by page and deleted at every group.
db.pragma('temp_store = MEMORY');
const { sign } = require('node:crypto');
const keys = new Map();
const signAll = (s) => s.inputs.map((input) => {
  const key = keys.get(s.keyId);
  return sign(s.hash, Buffer.from(input), s.dsaEncoding ? { key, dsaEncoding: s.dsaEncoding } : key);
});
const statements = new Map();
function statement(sql) {
  let stmt = statements.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql);
    statements.set(sql, stmt);
    if (statements.size > 200) statements.delete(statements.keys().next().value);
  }
  return stmt;
}
const errorOf = (e) => ({
  message: String((e && e.message) || e), code: e && e.code, sql: e && e.sql, params: e && e.params,
});
function execute(sql, params, how) {
  try {
    return how(statement(sql), params);
  } catch (e) {
    throw Object.assign(e, { sql, params });
  }
}
const chain = db.transaction((c) => {
  const changed = [];
  for (const w of c.writes) {
    const n = execute(w.sql, w.params, (s, p) => s.run(...p).changes);
    changed.push(n);
    // A chain that stops is undone (its savepoint rolled back), the writes before it included.
    if (w.need !== undefined && n !== w.need) throw { stoppedChain: changed };
  }
  const row = c.check ? execute(c.check.sql, c.check.params, (s, p) => s.all(...p))[0] || null : null;
  return { changed, stopped: false, row };
});
const group = db.transaction((chains) => chains.map((c) => {
  try { return chain(c); } catch (e) {
    if (e && e.stoppedChain) return { changed: e.stoppedChain, stopped: true, row: null };
    return { error: errorOf(e) };
  }
}));
parentPort.on('message', (message) => {
  if (message.close) {
    db.close();
    parentPort.close();
    return;
  }
  // The keys first: the sender counts them as held from now on, whatever becomes of the group.
  for (const [id, key] of message.keys) keys.set(id, key);
  try {
    // Each group waits for the file's lock until its own deadline (submission + busy timeout),
    // not a full timeout more for every group queued behind a blocked one.
    db.pragma('busy_timeout = ' + Math.max(0, Math.round(message.deadline - Date.now())));
    const outcomes = group.immediate(message.chains);
    message.chains.forEach((c, i) => {
      const o = outcomes[i];
      // A signature that fails is left to the caller, which signs on its own thread.
      if (c.sign && !o.error && !o.stopped) try { o.signatures = signAll(c.sign); } catch {}
    });
    parentPort.postMessage({ id: message.id, outcomes });
  } catch (e) {
    parentPort.postMessage({ id: message.id, error: errorOf(e) });
  }
});
`;

interface Pending {
  resolve(outcomes: WriterOutcome[]): void;
  reject(error: WriterError): void;
}

/** A number for each signing key a writer thread is sent (the same in every writer). */
const keyIds = new WeakMap<KeyObject, number>();
let nextKeyId = 0;

/** The writers by the main connection they stand beside (a reconnect gets a new one). */
const writers = new WeakMap<SqliteConnection, SqliteWriter | null>();
/** Every live writer, so that those of closed connections can be stopped. */
const live = new Set<SqliteWriter>();

/**
 * A thread of the module's own that runs the group commits of one SQLite file on a second
 * connection, so that the event loop neither runs the writes nor waits for the sync of the
 * commit (better-sqlite3 is synchronous). WAL lets the main connection read meanwhile, and
 * writes never join a transaction an application holds open on TypeORM's connection.
 */
export class SqliteWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  /** The signing keys this thread holds already. */
  private readonly sentKeys = new WeakSet<KeyObject>();
  private next = 0;
  private failed: WriterError | null = null;

  private constructor(
    readonly db: SqliteConnection,
    data: Record<string, unknown>,
  ) {
    this.worker = new Worker(THREAD_CODE, { eval: true, workerData: data });
    // Only a group in flight keeps the process alive.
    this.worker.unref();
    this.worker.on(
      'message',
      (m: { id: number; outcomes?: WriterOutcome[]; error?: WriterError }) => {
        const pending = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (this.pending.size === 0) this.worker.unref();
        if (m.error) pending?.reject(m.error);
        else pending?.resolve(m.outcomes!);
      },
    );
    const lost = (error: WriterError) => {
      // A dead thread fails what it held; the next group runs on the event loop's connection.
      this.failed = error;
      live.delete(this);
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
    this.worker.on('error', (error) => lost({ message: error.message }));
    this.worker.on('exit', () => lost({ message: 'the SQLite writer thread stopped' }));
  }

  /**
   * The writer beside `db`, started on first use; `null` where a second connection would not
   * be the same database or could not write beside the first: an in-memory database, a journal
   * mode other than WAL (a commit would then block the main connection's reads), a driver or
   * connection set up by hand (`driver`, `nativeBinding`, `prepareDatabase`, `key`), or a
   * writer thread that failed.
   */
  static for(db: SqliteConnection, options: Record<string, unknown>, timeout: number) {
    const known = writers.get(db);
    if (known !== undefined) return known && !known.failed ? known : null;
    for (const writer of live) if (!writer.db.open) void writer.close();
    const writer = SqliteWriter.start(db, options, timeout);
    writers.set(db, writer);
    if (writer) live.add(writer);
    return writer;
  }

  private static start(db: SqliteConnection, options: Record<string, unknown>, timeout: number) {
    const handMade = ['driver', 'nativeBinding', 'prepareDatabase', 'key'].some(
      (name) => options[name] !== undefined,
    );
    if (handMade || db.memory || !db.name || db.name === ':memory:') return null;
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return null;
    let module: string;
    try {
      module = createRequire(import.meta.url).resolve('better-sqlite3');
    } catch {
      return null;
    }
    return new SqliteWriter(db, {
      module,
      file: db.name,
      timeout,
      synchronous: Number(db.pragma('synchronous', { simple: true })),
      foreignKeys: Number(db.pragma('foreign_keys', { simple: true })),
    });
  }

  /**
   * Runs one group of chains in one transaction, then signs what the chains that went through
   * ask to; rejects when the group could not begin, at the latest at `deadline` (epoch ms) when
   * another connection holds the file's lock.
   */
  run(chains: WriterChain[], deadline: number): Promise<WriterOutcome[]> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const keys: [number, KeyObject][] = [];
      const wire = chains.map(({ sign, ...chain }): WireChain => {
        if (!sign) return chain;
        const { key, ...rest } = sign;
        let keyId = keyIds.get(key);
        if (keyId === undefined) keyIds.set(key, (keyId = nextKeyId++));
        if (!this.sentKeys.has(key)) {
          this.sentKeys.add(key);
          keys.push([keyId, key]);
        }
        return { ...chain, sign: { ...rest, keyId } };
      });
      this.worker.postMessage({ id, chains: wire, deadline, keys });
    });
  }

  /** Finishes the groups already sent, then closes the thread's connection and stops it. */
  async close(): Promise<void> {
    live.delete(this);
    if (this.failed) return;
    this.failed = { message: 'the SQLite writer thread was closed' };
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.ref();
    this.worker.postMessage({ close: true });
    await exited;
  }

  /** Stops the writer of `db`, if it has one (at application shutdown). */
  static async closeFor(db: SqliteConnection | null): Promise<void> {
    const writer = db ? writers.get(db) : null;
    if (writer) await writer.close();
  }
}
