/**
 * Fresh databases for the sample app: an SQLite file in the run's temporary folder, or a new
 * database on the PostgreSQL / MariaDB server (created per run, dropped afterwards).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DatabaseKind } from './options.js';

export const DATABASE_LABELS: Record<DatabaseKind, string> = {
  sqlite: 'SQLite',
  postgres: 'PostgreSQL',
  mariadb: 'MariaDB',
};

export interface BenchDatabase {
  kind: DatabaseKind;
  label: string;
  /** The sample app's DATABASE_URL. */
  url: string;
  /** The server's version, for the report. */
  version: string;
  drop(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 3000;

/**
 * A fresh database of `kind`, or the reason it cannot be had (the server does not answer).
 * `name` is a prefix; a random suffix keeps parallel or aborted runs apart.
 */
export async function createDatabase(
  kind: DatabaseKind,
  name: string,
  dir: string,
  admin: { postgres: string; mariadb: string },
): Promise<BenchDatabase | { unavailable: string }> {
  const label = DATABASE_LABELS[kind];
  const database = `${name}_${process.pid}_${randomBytes(3).toString('hex')}`;
  if (kind === 'sqlite') {
    return {
      kind,
      label,
      url: `sqlite:${join(dir, `${database}.sqlite`)}`,
      version: 'better-sqlite3 (in the app process)',
      drop: async () => {},
    };
  }
  try {
    if (kind === 'postgres') {
      const adminUrl = new URL(admin.postgres);
      const run = async (sql: string) => {
        const client = new pg.Client({
          connectionString: adminUrl.href,
          connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        });
        await client.connect();
        try {
          return await client.query<{ v: string }>(sql);
        } finally {
          await client.end();
        }
      };
      const version = (await run("SELECT current_setting('server_version') AS v")).rows[0].v;
      await run(`CREATE DATABASE "${database}"`);
      const url = new URL(adminUrl.href);
      url.pathname = `/${database}`;
      return {
        kind,
        label,
        url: url.href,
        version,
        drop: async () => {
          await run(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
        },
      };
    }
    const adminUrl = new URL(admin.mariadb);
    const run = async (sql: string) => {
      const connection = await mysql.createConnection({
        uri: adminUrl.href,
        connectTimeout: CONNECT_TIMEOUT_MS,
      });
      try {
        const [rows] = await connection.query(sql);
        return rows as { v: string }[];
      } finally {
        await connection.end();
      }
    };
    const version = (await run('SELECT VERSION() AS v'))[0].v;
    await run(`CREATE DATABASE \`${database}\``);
    const url = new URL(adminUrl.href);
    url.pathname = `/${database}`;
    return {
      kind,
      label,
      url: url.href,
      version,
      drop: async () => {
        await run(`DROP DATABASE IF EXISTS \`${database}\``);
      },
    };
  } catch (error) {
    return { unavailable: (error as Error).message || String(error) };
  }
}
