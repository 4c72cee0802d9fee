import type { DataSource } from 'typeorm';
import { TWO_FACTOR_AUTH_MIGRATIONS } from 'nestjs-rest-2fa';
import {
  createSuiteEnvironment,
  logIn,
  signUp,
  startSampleApp,
  type RunningApp,
  type SuiteEnvironment,
} from '../support/sample-app.harness.js';
import { databases, isAvailable, type DatabaseKind } from '../support/servers.js';

/** What the migrations built, read back from the database's own catalogue. */
interface Schema {
  tables: string[];
  /** table → primary-key columns, comma-separated. */
  primaryKeys: Record<string, string>;
  /** Secondary indexes (unique constraints included), as `table(columns)` with uniqueness. */
  indexes: { table: string; columns: string; unique: boolean }[];
  foreignKeys: { table: string; columns: string; references: string; onDelete: string }[];
}

type Row = Record<string, unknown>;

async function readSchema(kind: DatabaseKind, db: DataSource): Promise<Schema> {
  const schema =
    kind === 'sqlite'
      ? await readSqliteSchema(db)
      : kind === 'postgres'
        ? await readPostgresSchema(db)
        : await readMariadbSchema(db);
  const byName = (a: { table: string; columns: string }, b: { table: string; columns: string }) =>
    `${a.table}(${a.columns})`.localeCompare(`${b.table}(${b.columns})`);
  return {
    tables: schema.tables.sort(),
    primaryKeys: schema.primaryKeys,
    indexes: schema.indexes.sort(byName),
    foreignKeys: schema.foreignKeys.sort(byName),
  };
}

async function readSqliteSchema(db: DataSource): Promise<Schema> {
  const tables = (
    (await db.query(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tfa\\_%' ESCAPE '\\'",
    )) as { name: string }[]
  ).map((t) => t.name);
  const schema: Schema = { tables, primaryKeys: {}, indexes: [], foreignKeys: [] };
  for (const table of tables) {
    const columns = (await db.query(`PRAGMA table_info("${table}")`)) as {
      name: string;
      pk: number;
    }[];
    schema.primaryKeys[table] = columns
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name)
      .join(',');
    const indexes = (await db.query(`PRAGMA index_list("${table}")`)) as {
      name: string;
      unique: number;
      origin: string;
    }[];
    for (const index of indexes.filter((i) => i.origin !== 'pk')) {
      const parts = (await db.query(`PRAGMA index_info("${index.name}")`)) as {
        seqno: number;
        name: string;
      }[];
      schema.indexes.push({
        table,
        columns: parts
          .sort((a, b) => a.seqno - b.seqno)
          .map((p) => p.name)
          .join(','),
        unique: index.unique === 1,
      });
    }
    const keys = (await db.query(`PRAGMA foreign_key_list("${table}")`)) as {
      table: string;
      from: string;
      on_delete: string;
    }[];
    for (const key of keys) {
      schema.foreignKeys.push({
        table,
        columns: key.from,
        references: key.table,
        onDelete: key.on_delete,
      });
    }
  }
  return schema;
}

async function readPostgresSchema(db: DataSource): Promise<Schema> {
  const tables = (
    (await db.query(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'tfa\\_%'",
    )) as { name: string }[]
  ).map((t) => t.name);
  const indexes = (await db.query(`
    SELECT t.relname AS "table", ix.indisunique AS "unique", ix.indisprimary AS "primary",
      array_to_string(ARRAY(
        SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord
      ), ',') AS "columns"
    FROM pg_index ix
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = current_schema() AND t.relname LIKE 'tfa\\_%'`)) as {
    table: string;
    unique: boolean;
    primary: boolean;
    columns: string;
  }[];
  const foreignKeys = (await db.query(`
    SELECT c.conrelid::regclass::text AS "table", c.confrelid::regclass::text AS "references",
      CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
        WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END AS "onDelete",
      array_to_string(ARRAY(
        SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord
      ), ',') AS "columns"
    FROM pg_constraint c
    WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)) as Schema['foreignKeys'];
  return {
    tables,
    primaryKeys: Object.fromEntries(
      indexes.filter((i) => i.primary).map((i) => [i.table, i.columns]),
    ),
    indexes: indexes
      .filter((i) => !i.primary)
      .map(({ table, columns, unique }) => ({ table, columns, unique })),
    foreignKeys,
  };
}

async function readMariadbSchema(db: DataSource): Promise<Schema> {
  const tables = (
    (await db.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'tfa\\_%'",
    )) as { name: string }[]
  ).map((t) => t.name);
  const indexes = (await db.query(`
    SELECT TABLE_NAME AS \`table\`, INDEX_NAME AS name, MIN(NON_UNIQUE) AS nonUnique,
      GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS \`columns\`
    FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'tfa\\_%'
    GROUP BY TABLE_NAME, INDEX_NAME`)) as {
    table: string;
    name: string;
    nonUnique: number | string;
    columns: string;
  }[];
  const foreignKeys = (await db.query(`
    SELECT k.TABLE_NAME AS \`table\`, k.REFERENCED_TABLE_NAME AS \`references\`,
      r.DELETE_RULE AS onDelete, GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION) AS \`columns\`
    FROM information_schema.KEY_COLUMN_USAGE k
    JOIN information_schema.REFERENTIAL_CONSTRAINTS r
      ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
    WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
    GROUP BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE`)) as Schema['foreignKeys'];
  return {
    tables,
    primaryKeys: Object.fromEntries(
      indexes.filter((i) => i.name === 'PRIMARY').map((i) => [i.table, i.columns]),
    ),
    indexes: indexes
      .filter((i) => i.name !== 'PRIMARY')
      .map(({ table, columns, nonUnique }) => ({
        table,
        columns,
        unique: Number(nonUnique) === 0,
      })),
    foreignKeys: foreignKeys.map((f) => ({ ...f })),
  };
}

/** Rows of `table` whose `column` equals `value` (portable: the query builder binds it). */
async function countWhere(db: DataSource, table: string, column: string, value: string) {
  const row = (await db
    .createQueryBuilder()
    .select('COUNT(*)', 'n')
    .from(table, 't')
    .where(`t.${column} = :value`, { value })
    .getRawOne()) as { n: string | number };
  return Number(row.n);
}

/** The migrations TypeORM recorded as run, oldest first. */
async function migrationsRun(db: DataSource): Promise<{ timestamp: number; name: string }[]> {
  const table = db.options.migrationsTableName ?? 'migrations';
  const rows = (await db
    .createQueryBuilder()
    .select(['m.timestamp AS timestamp', 'm.name AS name'])
    .from(table, 'm')
    .orderBy('m.timestamp', 'ASC')
    .getRawMany()) as Row[];
  return rows.map((r) => ({ timestamp: Number(r.timestamp), name: String(r.name) }));
}

describe.each(databases())('schema and concurrency on %s', (kind) => {
  let suite: SuiteEnvironment;
  let running: RunningApp;

  beforeAll(async () => {
    suite = await createSuiteEnvironment(
      kind,
      isAvailable('redis') ? { REDIS_URL: process.env.TEST_REDIS_URL! } : {},
    );
    running = await startSampleApp(suite.env);
  });
  afterAll(async () => {
    await running?.close();
    await suite?.cleanup();
  });

  it('migrates a fresh database to the expected tables, keys and indexes', async () => {
    const schema = await readSchema(kind, running.dataSource);
    expect(schema.tables).toEqual(
      expect.arrayContaining([
        'tfa_accounts',
        'tfa_issued_tokens',
        'tfa_login_attempts',
        'tfa_secret_keys',
      ]),
    );
    expect(schema.primaryKeys).toMatchObject({
      tfa_accounts: 'id',
      tfa_secret_keys: 'id',
      tfa_issued_tokens: 'jti',
      tfa_login_attempts: 'username_hash',
    });
    expect(schema.indexes).toEqual(
      expect.arrayContaining([
        { table: 'tfa_accounts', columns: 'username_key', unique: true },
        { table: 'tfa_secret_keys', columns: 'account_id', unique: true },
        { table: 'tfa_issued_tokens', columns: 'account_id', unique: false },
        { table: 'tfa_issued_tokens', columns: 'family_id', unique: false },
        { table: 'tfa_issued_tokens', columns: 'exp', unique: false },
        { table: 'tfa_issued_tokens', columns: 'revoked_at', unique: false },
      ]),
    );
    expect(schema.foreignKeys).toEqual(
      expect.arrayContaining([
        {
          table: 'tfa_issued_tokens',
          columns: 'account_id',
          references: 'tfa_accounts',
          onDelete: 'CASCADE',
        },
        {
          table: 'tfa_secret_keys',
          columns: 'account_id',
          references: 'tfa_accounts',
          onDelete: 'CASCADE',
        },
      ]),
    );
    expect((await migrationsRun(running.dataSource)).map((m) => m.name)).toEqual(
      TWO_FACTOR_AUTH_MIGRATIONS.map((M) => new M().name ?? M.name),
    );
  });

  it('deletes the secret key and issued tokens of a deleted account (cascade)', async () => {
    const account = await signUp(running);
    await logIn(running, account);
    const db = running.dataSource;
    expect(await countWhere(db, 'tfa_secret_keys', 'account_id', account.id)).toBe(1);
    expect(await countWhere(db, 'tfa_issued_tokens', 'account_id', account.id)).toBe(2);
    await db
      .createQueryBuilder()
      .delete()
      .from('tfa_accounts')
      .where('id = :id', { id: account.id })
      .execute();
    expect(await countWhere(db, 'tfa_accounts', 'id', account.id)).toBe(0);
    expect(await countWhere(db, 'tfa_secret_keys', 'account_id', account.id)).toBe(0);
    expect(await countWhere(db, 'tfa_issued_tokens', 'account_id', account.id)).toBe(0);
  });

  it('changes nothing when it starts again on a migrated database', async () => {
    const account = await signUp(running);
    const before = await readSchema(kind, running.dataSource);
    const ranBefore = await migrationsRun(running.dataSource);
    await running.close();
    running = await startSampleApp(suite.env);
    expect(await readSchema(kind, running.dataSource)).toEqual(before);
    expect(await migrationsRun(running.dataSource)).toEqual(ranBefore);
    const pair = await logIn(running, account);
    await running.http().get('/me').set('Authorization', `Bearer ${pair.access_token}`).expect(200);
  });

  it('ends 10 parallel sign-ups of one username (case and Unicode variants) in one 201 and 409s', async () => {
    const variants = [
      'Race.Zoë',
      'race.zoë',
      'RACE.ZOË',
      '  race.zoë ',
      'Race.Zoe\u0308',
      'race.zoe\u0308',
      'rACE.zOË',
      'Race.ZoË',
      'race.Zoë',
      'RaCe.ZoE\u0308',
    ];
    const responses = await Promise.all(
      variants.map((username) =>
        running
          .http()
          .post('/accounts')
          .send({ username, password: 'correct horse battery staple' }),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array<number>(9).fill(409)]);
    const created = responses.find((r) => r.status === 201)!;
    const db = running.dataSource;
    expect(await countWhere(db, 'tfa_accounts', 'username_key', 'race.zoë')).toBe(1);
    expect(await countWhere(db, 'tfa_secret_keys', 'account_id', created.body.id)).toBe(1);
    for (const conflict of responses.filter((r) => r.status === 409)) {
      expect(conflict.body).not.toHaveProperty('secretKey');
    }
  });

  it('tells apart usernames that differ only by an accent (no accent-insensitive collation)', async () => {
    await signUp(running, 'accent.zoë');
    const plain = await signUp(running, 'accent.zoe');
    const other = await signUp(running, 'accent.zöe');
    expect(new Set([plain.id, other.id]).size).toBe(2);
    const me = await running
      .http()
      .get('/me')
      .set('Authorization', `Bearer ${(await logIn(running, plain)).access_token}`)
      .expect(200);
    expect(me.body).toEqual({ id: plain.id, username: 'accent.zoe' });
  });

  it('ends 10 parallel refreshes of one refresh token in at most one new pair and 401s', async () => {
    const account = await signUp(running);
    const first = await logIn(running, account);
    // The refresh route works for one request at a time ...
    const single = await running
      .http()
      .post('/auth/refresh')
      .send({ refresh_token: first.refresh_token })
      .expect(200);
    // ... and of ten racing with one token, at most one wins.
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        running.http().post('/auth/refresh').send({ refresh_token: single.body.refresh_token }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 401)).toBe(true);
    // The token was spent exactly once: one child of it is recorded, at most.
    const { jti } = JSON.parse(
      Buffer.from(single.body.refresh_token.split('.')[1], 'base64url').toString(),
    ) as { jti: string };
    expect(
      await countWhere(running.dataSource, 'tfa_issued_tokens', 'parent_jti', jti),
    ).toBeLessThanOrEqual(2);
  });

  it('reports the database (and Redis when configured) up in GET /health', async () => {
    const res = await running.http().get('/health').expect(200);
    const expected: Record<string, string> = { database: 'up' };
    if (suite.env.REDIS_URL) expected.redis = 'up';
    expect(
      Object.fromEntries(
        Object.entries(res.body.details as Record<string, { status: string }>).map(([k, v]) => [
          k,
          v.status,
        ]),
      ),
    ).toEqual(expected);
    expect(res.body.status).toBe('ok');
  });

  // Last: Passport keeps one process-wide registry of strategies, so once the apps started here
  // close, every app of this process authenticates through their closed strategies (see
  // two-instances.e2e-spec.ts).
  it('starts two instances at once on a fresh database, migrating it once', async () => {
    const fresh = await createSuiteEnvironment(kind);
    const started = await Promise.allSettled([
      startSampleApp(fresh.env),
      startSampleApp(fresh.env),
    ]);
    try {
      expect(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'up'))).toEqual([
        'up',
        'up',
      ]);
      const [a, b] = started.map((s) => (s as PromiseFulfilledResult<RunningApp>).value);
      expect((await migrationsRun(a.dataSource)).map((m) => m.name)).toEqual(
        TWO_FACTOR_AUTH_MIGRATIONS.map((M) => new M().name ?? M.name),
      );
      const account = await signUp(a);
      await logIn(b, account);
    } finally {
      for (const s of started) if (s.status === 'fulfilled') await s.value.close();
      await fresh.cleanup();
    }
  });
});
