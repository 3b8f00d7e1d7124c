import { spawn } from 'node:child_process';
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
import { RECENT_UPDATES_SQL } from '../../../src/state/stack-row.js';
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

  it('upgrades a version-3 database to the preview cursor, keeping its stacks and cursors', async () => {
    const path = join(dir, 'state.db');
    const raw = new Database(path);
    raw.exec(SCHEMA_MIGRATIONS_TABLE_SQL);
    for (const m of pendingMigrations([], SQLITE_MIGRATIONS.filter((x) => x.version <= 3))) {
      raw.exec(m.sql);
      m.data?.(raw);
      raw.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, 1);
    }
    raw
      .prepare('INSERT INTO stacks (org, project, stack, last_update, cursor_version, first_seen_ms) VALUES (?, ?, ?, ?, ?, ?)')
      .run('acme', 'web', 'prod', 100, 5, 1_000);
    raw.close();
    const store = open(path);
    await store.migrate();
    const ref = { org: 'acme', project: 'web', stack: 'prod' };
    expect(await store.getStack(ref)).toEqual({ ...ref, lastUpdate: 100, cursorVersion: 5, firstSeenMs: 1_000 });
    await store.setPreviewCursor(ref, { version: 5, startTime: 120 });
    expect((await store.getStack(ref))?.previewCursor).toEqual({ version: 5, startTime: 120 });
  });

  it('reads the recent updates of the status page in index order, without sorting the ledger', async () => {
    const path = join(dir, 'state.db');
    const store = open(path);
    await store.migrate();
    await store.close();
    const raw = new Database(path, { readonly: true });
    try {
      const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${RECENT_UPDATES_SQL} LIMIT 50`).all() as { detail: string }[]).map((r) => r.detail);
      expect(plan.join('; ')).toContain('exported_updates_recent');
      expect(plan.join('; ')).not.toContain('TEMP B-TREE');
    } finally {
      raw.close();
    }
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

  it('refuses a second store on a file in use with STATE_LOCKED at once, and opens it after the first closes', async () => {
    const path = join(dir, 'state.db');
    const first = open(path);
    await first.migrate();
    const started = Date.now();
    const err = await rejection(open(path).migrate());
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.code).toBe('STATE_LOCKED');
    expect(err.message).toContain(`state file ${path} is in use by another process`);
    expect(err.message).toContain('EXPORTER_STATE');
    // The first store keeps working.
    await first.replaceOrgStacks('acme', [{ org: 'acme', project: 'web', stack: 'dev', lastUpdate: 1 }], 1);
    await first.close();

    const second = open(path);
    await second.migrate();
    expect((await second.listStacks()).map((s) => s.stack)).toEqual(['dev']);
  });

  it('is locked by a store in another process until that process is killed', async () => {
    const path = join(dir, 'state.db');
    const holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { SqliteStateStore } from ${JSON.stringify(new URL('../../../src/state/sqlite-store.ts', import.meta.url).href)};
         const store = new SqliteStateStore({ path: ${JSON.stringify(path)} });
         await store.migrate();
         process.stdout.write('locked\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('locked')) resolve();
        });
        holder.once('exit', (code) => reject(new Error(`the lock holder exited early (${String(code)})`)));
      });
      expect((await rejection(open(path).migrate())).code).toBe('STATE_LOCKED');
    } finally {
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
    }
    // A crashed holder leaves no lock behind: the operating system released it.
    const after = open(path);
    await after.migrate();
    expect(await after.schemaVersion()).toBe(SQLITE_SCHEMA_VERSION);
  }, 20_000);

  it('counts every observation of a series that one commit brings several times, as separate commits would', async () => {
    const stack = { org: 'acme', project: 'web', stack: 'dev' };
    const buckets = [1, 10];
    const observe = (value: number, labels: Record<string, string> = { op: 'create' }) => ({ name: 'h_seconds', labels, buckets, value });
    const update = (updateId: string, version: number) => ({ stack, updateId, kind: 'update', version, result: 'succeeded', startTime: 10, endTime: 20 });
    const values = [0.5, 3, 30, 7];
    const together = open(join(dir, 'together.db'));
    const apart = open(join(dir, 'apart.db'));
    await together.migrate();
    await apart.migrate();
    await together.commitUpdate({
      update: update('u1', 1),
      deltas: { counters: [], histograms: [...values.map((v) => observe(v)), observe(2, { op: 'delete' })] },
      exportedAtMs: 1,
    });
    await together.commitUpdate({ update: update('u2', 2), deltas: { counters: [], histograms: [observe(0.1), observe(0.2)] }, exportedAtMs: 2 });
    for (const [i, v] of [...values, 2, 0.1, 0.2].entries()) {
      const labels = i === 4 ? { op: 'delete' } : { op: 'create' };
      await apart.commitUpdate({ update: update(`a${i}`, i + 1), deltas: { counters: [], histograms: [observe(v, labels)] }, exportedAtMs: i });
    }
    const create = { name: 'h_seconds', labels: { op: 'create' }, buckets, bucketCounts: [3, 2, 1], count: 6 };
    // Sums are compared to the float rounding: the fold adds a commit's values before the row's sum.
    const withoutSum = (rows: Awaited<ReturnType<SqliteStateStore['readHistograms']>>) => rows.map(({ sum: _sum, ...rest }) => rest);
    const rows = await together.readHistograms();
    expect(withoutSum(rows)).toEqual(withoutSum(await apart.readHistograms()));
    expect(rows.find((r) => r.labels['op'] === 'create')).toMatchObject(create);
    expect(rows.find((r) => r.labels['op'] === 'create')?.sum).toBeCloseTo(40.8, 9);
    expect(rows.find((r) => r.labels['op'] === 'delete')).toMatchObject({ bucketCounts: [0, 1, 0], sum: 2, count: 1 });
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
