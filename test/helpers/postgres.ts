import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's PostgreSQL server (trust auth); PG* variables or TEST_POSTGRES_URL override it. */
const ADMIN_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * True when a server answers. CI starts one (.ci/run), so there a missing server fails the
 * run instead of skipping the PostgreSQL tests; locally they are skipped with a message.
 */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (err) {
    if (process.env['CI']) throw new Error(`PostgreSQL is required in CI (started by .ci/run): ${String(err)}`);
    console.warn(`skipping PostgreSQL tests: no server answers at ${ADMIN_URL} (${String(err)})`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestDatabase {
  /** URL of the throwaway database. */
  readonly url: string;
  /** A URL on the same database whose connections use their own new schema (one per test). */
  schemaUrl(): Promise<string>;
  /** Drops the database, closing whatever still connects to it. */
  drop(): Promise<void>;
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a database with a random name; call drop() in afterAll. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pue_test_${randomBytes(6).toString('hex')}`;
  await admin(ADMIN_URL, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let schemas = 0;
  return {
    url: url.toString(),
    async schemaUrl() {
      const schema = `s${++schemas}`;
      await admin(url.toString(), (c) => c.query(`CREATE SCHEMA ${schema}`));
      const scoped = new URL(url);
      scoped.searchParams.set('options', `-c search_path=${schema}`);
      return scoped.toString();
    },
    drop: () => admin(ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
