import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';

/** The databases the e2e suites run on. */
export type DatabaseKind = 'sqlite' | 'postgres' | 'mariadb';
export const ALL_DATABASES: DatabaseKind[] = ['sqlite', 'postgres', 'mariadb'];

const available = new Set((process.env.TFA_TEST_SERVERS ?? 'sqlite').split(','));

/** True when the server answered in the global set-up (SQLite always does). */
export function isAvailable(server: DatabaseKind | 'redis'): boolean {
  return available.has(server);
}

/** The databases to run on: every one that answers (the global set-up reports the others). */
export function databases(): DatabaseKind[] {
  return ALL_DATABASES.filter(isAvailable);
}

/** The HTTP adapters the sample app runs on. */
export type AdapterKind = 'express' | 'fastify';

/** Every available database on Express, and on Fastify too: `describe.each(setups())`. */
export function setups(): [DatabaseKind, AdapterKind][] {
  return databases().flatMap((kind): [DatabaseKind, AdapterKind][] => [
    [kind, 'express'],
    [kind, 'fastify'],
  ]);
}

/** A fresh, empty database for one suite, and how to drop it afterwards. */
export interface TestDatabase {
  kind: DatabaseKind;
  url: string;
  drop(): Promise<void>;
}

/** Creates a new database (or SQLite file) that no other suite uses. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  const name = `tfa_${randomBytes(6).toString('hex')}`;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'tfa-'));
    return {
      kind,
      url: `sqlite:${join(dir, 'test.sqlite')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (kind === 'postgres') {
    const admin = process.env.TEST_POSTGRES_URL!;
    await pgAdmin(admin, `CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    return {
      kind,
      url: url.toString(),
      drop: () => pgAdmin(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    };
  }
  const admin = process.env.TEST_MARIADB_URL!;
  await mysqlAdmin(admin, `CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    drop: () => mysqlAdmin(admin, `DROP DATABASE IF EXISTS ${name}`),
  };
}

/** Runs one statement as the PostgreSQL administrator. */
export async function pgAdmin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function mysqlAdmin(url: string, sql: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    await conn.query(sql);
  } finally {
    await conn.end();
  }
}
