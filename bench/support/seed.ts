import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

/**
 * The part of better-sqlite3 used here, typed locally: the package ships no types, and an
 * ambient `declare module` would be shared with (and constrain) every other file of the project.
 */
interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(source: string): unknown;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  filename: string,
  options?: { timeout?: number; fileMustExist?: boolean },
) => SqliteDatabase;

export interface SeedOptions {
  accountId: string;
  issuer: string;
  kid: string;
  /** Unrevoked, unexpired access-token rows. */
  rows: number;
  /** Revoked-but-unexpired rows (revoked now, expiring in an hour). */
  revoked: number;
  batchSize?: number;
}

export interface SeedResult {
  seconds: number;
  /** Latest `revoked_at` written (epoch ms). */
  lastRevokedAt: number;
  /** Rows of the table afterwards (the bench's own login adds two). */
  totalRows: number;
}

/**
 * Inserts rows straight into `tfa_issued_tokens` (and, for revoked ones, `tfa_revocations`) of
 * a running fixture's SQLite file (its migrations created the tables), in batches, one
 * transaction per batch. Columns as in
 * lib/core/database/migrations/init.migration.ts: instants are epoch ms BIGINT, iat/nbf/exp
 * epoch seconds.
 */
export function seedIssuedTokens(file: string, options: SeedOptions): SeedResult {
  const started = performance.now();
  const db = new Database(file, { timeout: 10000, fileMustExist: true });
  db.pragma('journal_mode = WAL');
  const insert = db.prepare(
    `INSERT INTO tfa_issued_tokens
       (jti, account_id, type, iss, sub, aud, kid, iat, nbf, exp, family_id, parent_jti,
        replaced_by, revoked_at, revoked_reason, created_at)
     VALUES (?, ?, 'access', ?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)`,
  );
  // A revoked access token is also a record of the revocation log the instances poll.
  const logRevocation = db.prepare(
    `INSERT INTO tfa_revocations (id, kind, subject, valid_after, exp, recorded_at)
     VALUES (?, 'token', ?, NULL, ?, ?)`,
  );
  const batch = db.transaction((count: number, revoked: boolean) => {
    const now = Date.now();
    const iat = Math.floor(now / 1000) - 60;
    for (let i = 0; i < count; i++) {
      const jti = randomUUID();
      if (revoked) logRevocation.run(randomUUID(), jti, iat + 3600, now);
      insert.run(
        jti,
        options.accountId,
        options.issuer,
        options.accountId,
        options.kid,
        iat,
        iat,
        iat + 3600,
        randomUUID(),
        revoked ? now : null,
        revoked ? 'revoked' : null,
        now,
      );
    }
  });
  const size = options.batchSize ?? 10_000;
  let lastRevokedAt = 0;
  let totalRows: number;
  try {
    for (let done = 0; done < options.rows; done += size) {
      batch(Math.min(size, options.rows - done), false);
    }
    for (let done = 0; done < options.revoked; done += size) {
      batch(Math.min(size, options.revoked - done), true);
      lastRevokedAt = Date.now();
    }
    totalRows = (db.prepare('SELECT COUNT(*) AS n FROM tfa_issued_tokens').get() as { n: number })
      .n;
  } finally {
    db.close();
  }
  return { seconds: (performance.now() - started) / 1000, lastRevokedAt, totalRows };
}

/** The registered claims of a seeded access token, as its row holds them. */
export interface SeededClaims {
  iss: string;
  sub: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

/**
 * Inserts `count` live access-token rows (unrevoked, expiring in `ttl` seconds) for one account
 * into a running fixture's SQLite file and returns their claims, for the runner to sign with the
 * fixture's key: the records match the tokens as TokenIssuer's would (type `access`, `sub` the
 * account, the signing `kid`, the same `exp`), so the verifier accepts them on first sight.
 * Each row has a family id of its own, as each login has (no family row: access tokens need
 * none).
 */
export function seedAccessTokens(
  file: string,
  options: { accountId: string; issuer: string; kid: string; count: number; ttl?: number },
): { claims: SeededClaims[]; seconds: number } {
  const started = performance.now();
  const db = new Database(file, { timeout: 10000, fileMustExist: true });
  db.pragma('journal_mode = WAL');
  const insert = db.prepare(
    `INSERT INTO tfa_issued_tokens
       (jti, account_id, type, iss, sub, aud, kid, iat, nbf, exp, family_id, parent_jti,
        replaced_by, revoked_at, revoked_reason, created_at)
     VALUES (?, ?, 'access', ?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?)`,
  );
  const claims: SeededClaims[] = [];
  const batch = db.transaction((rows: SeededClaims[]) => {
    const now = Date.now();
    for (const c of rows) {
      insert.run(
        c.jti,
        options.accountId,
        c.iss,
        c.sub,
        options.kid,
        c.iat,
        c.nbf,
        c.exp,
        randomUUID(),
        now,
      );
    }
  });
  try {
    const iat = Math.floor(Date.now() / 1000);
    const ttl = options.ttl ?? 3600;
    for (let done = 0; done < options.count; done += 10_000) {
      const rows = Array.from({ length: Math.min(10_000, options.count - done) }, () => ({
        iss: options.issuer,
        sub: options.accountId,
        iat,
        nbf: iat,
        exp: iat + ttl,
        jti: randomUUID(),
      }));
      batch(rows);
      claims.push(...rows);
    }
  } finally {
    db.close();
  }
  return { claims, seconds: (performance.now() - started) / 1000 };
}
