import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExporterError } from '../../../src/errors.js';
import { POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE_SQL, POSTGRES_SCHEMA_VERSION } from '../../../src/state/postgres-migrations.js';
import { PostgresStateStore } from '../../../src/state/postgres-store.js';
import { describePostgresUrl } from '../../../src/state/postgres-url.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../helpers/postgres.js';
import { stateStoreContract } from '../../unit/state/state-store-contract.js';

const available = await postgresAvailable();

describe.skipIf(!available)('PostgresStateStore on the real server', () => {
  let db: TestDatabase;
  const stores: PostgresStateStore[] = [];

  function open(url: string): PostgresStateStore {
    const store = new PostgresStateStore({ url });
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  afterAll(async () => {
    await db?.drop();
  });

  // Each contract test gets its own schema in the throwaway database.
  stateStoreContract('PostgresStateStore', async () => {
    const url = await db.schemaUrl();
    const opened: StateStore[] = [new PostgresStateStore({ url })];
    return {
      store: opened[0] as StateStore,
      reopen: async () => {
        const next = new PostgresStateStore({ url });
        opened.push(next);
        return next;
      },
      cleanup: async () => {
        for (const s of opened) await s.close();
      },
    };
  });

  it('applies the migrations once when several replicas start at the same time', async () => {
    const url = await db.schemaUrl();
    const replicas = Array.from({ length: 4 }, () => open(url));
    await Promise.all(replicas.map((s) => s.migrate()));
    for (const s of replicas) expect(await s.schemaVersion()).toBe(POSTGRES_SCHEMA_VERSION);
    const { rows } = await replicas[0]!.query('read', (c) =>
      c.query<{ version: number; n: number }>('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version'),
    );
    expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, n: 1 })));
  });

  it('upgrades a version-3 database to the preview cursor, keeping its stacks and cursors', async () => {
    const url = await db.schemaUrl();
    const old = open(url);
    await old.query('seed', async (c) => {
      await c.query(POSTGRES_MIGRATIONS_TABLE_SQL);
      for (const m of POSTGRES_MIGRATIONS.filter((x) => x.version <= 3)) {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      await c.query("INSERT INTO stacks (org, project, stack, last_update, cursor_version, first_seen_ms) VALUES ('acme', 'web', 'prod', 100, 5, 1000)");
    });
    const store = open(url);
    await store.migrate();
    expect(await store.schemaVersion()).toBe(POSTGRES_SCHEMA_VERSION);
    const ref = { org: 'acme', project: 'web', stack: 'prod' };
    expect(await store.getStack(ref)).toEqual({ ...ref, lastUpdate: 100, cursorVersion: 5, firstSeenMs: 1_000 });
    await store.setPreviewCursor(ref, { version: 5, startTime: 120 });
    expect((await store.getStack(ref))?.previewCursor).toEqual({ version: 5, startTime: 120 });
  });

  it('refuses a database written by a newer schema version and leaves it untouched', async () => {
    const url = await db.schemaUrl();
    const store = open(url);
    await store.migrate();
    const future = POSTGRES_SCHEMA_VERSION + 1;
    await store.query('seed', (c) => c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [future]));
    const err = await open(url).migrate().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExporterError);
    expect((err as ExporterError).code).toBe('STATE_MIGRATION_FAILED');
    expect((err as ExporterError).message).toContain(`schema version ${future}, newer than the ${POSTGRES_SCHEMA_VERSION}`);
    expect(await store.schemaVersion()).toBe(future);
  });

  it('reports STATE_ERROR without the password when the server refuses the login', async () => {
    const url = new URL(db.url);
    url.username = 'no_such_role_pue';
    url.password = 'hunter2-secret';
    const store = open(url.toString());
    const err = await store.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExporterError);
    expect((err as ExporterError).code).toBe('STATE_ERROR');
    const text = `${(err as ExporterError).message} ${JSON.stringify((err as ExporterError).details)}`;
    expect(text).toContain('no_such_role_pue');
    expect(text).not.toContain('hunter2-secret');
  });

  it('applies statement_timeout to every pooled connection', async () => {
    const store = new PostgresStateStore({ url: db.url, statementTimeoutMillis: 1234 });
    stores.push(store);
    const { rows } = await store.query('read', (c) => c.query<{ statement_timeout: string }>('SHOW statement_timeout'));
    expect(rows[0]?.statement_timeout).toBe('1234ms');
  });
});

describe('describePostgresUrl', () => {
  it('hides the password and keeps sslmode', () => {
    expect(describePostgresUrl('postgresql://app:s3cr%40t@db.example:5432/exporter?sslmode=require')).toBe(
      'postgresql://app:[REDACTED]@db.example:5432/exporter?sslmode=require',
    );
    expect(describePostgresUrl('postgres://app@db/exporter?password=abc')).not.toContain('abc');
  });
});

// pg is imported so a missing dependency fails this file loudly rather than skipping it.
expect(typeof pg.Pool).toBe('function');
