import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExporterError } from '../../../src/errors.js';
import type { StateStore } from '../../../src/state/state-store.js';
import {
  SCHEMA_MIGRATIONS_TABLE_SQL,
  SQLITE_MIGRATIONS,
  SQLITE_SCHEMA_VERSION,
  pendingMigrations,
} from '../../../src/state/sqlite-migrations.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import { stateStoreContract } from './state-store-contract.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'pue-state-'));
}

stateStoreContract('SqliteStateStore on a file', async () => {
  const dir = tempDir();
  const path = join(dir, 'state.db');
  const opened: StateStore[] = [new SqliteStateStore({ path })];
  return {
    store: opened[0] as StateStore,
    reopen: async () => {
      const next = new SqliteStateStore({ path });
      opened.push(next);
      return next;
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

stateStoreContract('SqliteStateStore in :memory:', async () => {
  const store = new SqliteStateStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

async function rejection(promise: Promise<unknown>): Promise<ExporterError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExporterError);
  return err as ExporterError;
}

describe('SqliteStateStore on disk', () => {
  let dir: string;
  const stores: SqliteStateStore[] = [];

  function open(path: string): SqliteStateStore {
    const store = new SqliteStateStore({ path });
    stores.push(store);
    return store;
  }

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records each applied migration once in schema_migrations', async () => {
    const path = join(dir, 'state.db');
    const store = open(path);
    expect(await store.schemaVersion()).toBe(0);
    await store.migrate();
    await store.migrate();
    expect(await store.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
    await store.close();

    const raw = new Database(path, { readonly: true });
    try {
      const rows = raw.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      expect(rows).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('refuses a database written by a newer schema version and leaves it untouched', async () => {
    const path = join(dir, 'state.db');
    const first = open(path);
    await first.migrate();
    await first.close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(
      SQLITE_SCHEMA_VERSION + 1,
      'from the future',
      1,
    );
    raw.close();

    const err = await rejection(open(path).migrate());
    expect(err.code).toBe('STATE_MIGRATION_FAILED');
    expect(err.message).toContain(`schema version ${SQLITE_SCHEMA_VERSION + 1}`);
    expect(err.message).toContain('newer');
  });

  it('rolls back a failing migration and reports STATE_MIGRATION_FAILED', async () => {
    const path = join(dir, 'state.db');
    // A table in the way makes migration 1 fail after some of its statements ran.
    const raw = new Database(path);
    raw.exec('CREATE TABLE in_progress (x INTEGER)');
    raw.close();

    const store = open(path);
    const err = await rejection(store.migrate());
    expect(err.code).toBe('STATE_MIGRATION_FAILED');
    expect(err.message).toContain('migration 1');
    expect(err.cause).toBeInstanceOf(Error);
    expect(await store.schemaVersion()).toBe(0);
    await store.close();

    const check = new Database(path, { readonly: true });
    try {
      const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['in_progress', 'schema_migrations']);
    } finally {
      check.close();
    }
  });

  it('upgrades a version-1 database to version 2, keeping its rows and listing its stacks', async () => {
    const path = join(dir, 'state.db');
    // A database as a version-1 exporter left it; it may hold one update id under two stack
    // names of an org (the old ledger was per stack), which migration 2 must accept.
    const raw = new Database(path);
    raw.exec(SCHEMA_MIGRATIONS_TABLE_SQL);
    for (const m of pendingMigrations([], SQLITE_MIGRATIONS.slice(0, 1))) {
      raw.exec(m.sql);
      raw.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, 1);
    }
    raw
      .prepare(
        `INSERT INTO stacks (org, project, stack, last_update, resource_count, synced_last_update, cursor_version, first_seen_ms)
         VALUES ('acme', 'web', 'dev', 100, 5, 100, 3, 1000)`,
      )
      .run();
    const ledger = raw.prepare(
      `INSERT INTO exported_updates (org, project, stack, update_id, kind, version, result, start_time, end_time, exported_at_ms)
       VALUES ('acme', 'web', ?, 'u3', 'update', 3, 'succeeded', 10, 20, 1000)`,
    );
    ledger.run('dev');
    ledger.run('old-dev');
    raw.close();

    const store = open(path);
    await store.migrate();
    expect(await store.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
    const dev = { org: 'acme', project: 'web', stack: 'dev' };
    const expected = { ...dev, lastUpdate: 100, resourceCount: 5, syncedLastUpdate: 100, cursorVersion: 3, firstSeenMs: 1000 };
    expect(await store.listStacks()).toEqual([expected]);
    expect(await store.getStack(dev)).toEqual(expected);
    expect(await store.countExported()).toBe(2);
    expect(await store.isExported({ ...dev, stack: 'renamed' }, 'u3')).toBe(true);
    await store.close();

    const check = new Database(path, { readonly: true });
    try {
      expect(check.prepare('SELECT listed FROM stacks').pluck().all()).toEqual([1]);
      const plan = check
        .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM exported_updates WHERE org = 'acme' AND update_id = 'u3'")
        .all() as { detail: string }[];
      expect(plan.map((r) => r.detail).join('\n')).toContain('exported_updates_org_update_id');
    } finally {
      check.close();
    }
  });

  it('moves the metrics stamp on writes a scrape would see, and only on those', async () => {
    const store = open(join(dir, 'state.db'));
    await store.migrate();
    const dev = { org: 'acme', project: 'web', stack: 'dev' };
    const stamps: number[] = [await store.readMetricsStamp()];
    const step = async (write: () => Promise<unknown>): Promise<boolean> => {
      await write();
      stamps.push(await store.readMetricsStamp());
      return (stamps.at(-1) as number) > (stamps.at(-2) as number);
    };
    expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 2 }], 1))).toBe(true);
    // The same stack list again (every poll cycle) changes nothing a scrape shows.
    expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 2 }], 2))).toBe(false);
    expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 3 }], 3))).toBe(true);
    const running = [{ stack: dev, updateId: 'r1', kind: 'update', version: 2, startTime: 5 }];
    expect(await step(() => store.setInProgress(dev, running))).toBe(true);
    expect(await step(() => store.setInProgress(dev, running))).toBe(false);
    expect(await step(() => store.markStackSynced(dev, 1))).toBe(false);
    expect(await step(() => store.advanceCursor(dev, 1))).toBe(false);
    const commit = {
      update: { stack: dev, updateId: 'r1', kind: 'update', version: 2, result: 'succeeded', startTime: 5, endTime: 9 },
      deltas: { counters: [{ name: 'c_total', labels: {}, value: 1 }], histograms: [] },
      exportedAtMs: 10,
    };
    expect(await step(() => store.commitUpdate(commit))).toBe(true);
    // A commit refused as already exported changes nothing.
    expect(await step(() => store.commitUpdate(commit))).toBe(false);
    expect(await step(() => store.replaceOrgStacks('acme', [], 4))).toBe(true);
  });

  it('creates the parent directories of the database file', async () => {
    const path = join(dir, 'nested', 'deeper', 'state.db');
    await open(path).migrate();
    expect(existsSync(path)).toBe(true);
  });

  it.runIf(existsSync('/proc/self'))('fails with STATE_ERROR, instead of hanging, for a path under /proc', async () => {
    const err = await rejection(open('/proc/pue-no-such-dir/state.db').migrate());
    expect(err.code).toBe('STATE_ERROR');
    expect(err.message).toContain('/proc/pue-no-such-dir/state.db');
  });

  it('fails with STATE_ERROR when a parent of the path is a file', async () => {
    writeFileSync(join(dir, 'plain-file'), 'x');
    const err = await rejection(open(join(dir, 'plain-file', 'state.db')).migrate());
    expect(err.code).toBe('STATE_ERROR');
    expect(err.message).toContain('is not a directory');
  });

  it('fails with STATE_ERROR naming the path when the file is not a SQLite database', async () => {
    const path = join(dir, 'not-a-db.db');
    writeFileSync(path, 'this is a text file, not a database\n'.repeat(200));
    const err = await rejection(open(path).migrate());
    expect(err.code).toBe('STATE_ERROR');
    expect(err.message).toContain(path);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('wraps driver failures as STATE_ERROR with the cause, e.g. use before migrate', async () => {
    const err = await rejection(open(join(dir, 'state.db')).listStacks());
    expect(err.code).toBe('STATE_ERROR');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('listStacks');
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('rejects an empty path', () => {
    expect(() => new SqliteStateStore({ path: '' })).toThrow(ExporterError);
  });

  it('lets two stores on one file see each other’s commits', async () => {
    const path = join(dir, 'state.db');
    const a = open(path);
    const b = open(path);
    await a.migrate();
    await b.migrate();
    const commit = {
      update: {
        stack: { org: 'acme', project: 'web', stack: 'dev' },
        updateId: 'u1',
        kind: 'update',
        version: 1,
        result: 'succeeded',
        startTime: 10,
        endTime: 20,
      },
      deltas: { counters: [{ name: 'c_total', labels: {}, value: 1 }], histograms: [] },
      exportedAtMs: 1,
    };
    expect(await a.commitUpdate(commit)).toBe(true);
    expect(await b.commitUpdate(commit)).toBe(false);
    expect(await b.readCounters()).toEqual([{ name: 'c_total', labels: {}, value: 1 }]);
  });
});

describe('pendingMigrations', () => {
  const steps = [
    { version: 2, name: 'two', sql: '' },
    { version: 1, name: 'one', sql: '' },
    { version: 3, name: 'three', sql: '' },
  ];

  it('returns the unapplied migrations in version order', () => {
    expect(pendingMigrations([], steps).map((m) => m.version)).toEqual([1, 2, 3]);
    expect(pendingMigrations([1], steps).map((m) => m.version)).toEqual([2, 3]);
    expect(pendingMigrations([1, 2, 3], steps)).toEqual([]);
  });

  it('refuses a database that recorded a version newer than any it knows', () => {
    expect(() => pendingMigrations([1, 4], steps)).toThrow(
      expect.objectContaining({ code: 'STATE_MIGRATION_FAILED' }) as Error,
    );
  });

  it('numbers the shipped migrations from 1 without gaps', () => {
    expect(SQLITE_MIGRATIONS.map((m) => m.version)).toEqual(SQLITE_MIGRATIONS.map((_, i) => i + 1));
  });
});
