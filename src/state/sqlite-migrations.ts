import { ExporterError } from '../errors.js';
import { labelsKey } from '../domain/metric-delta.js';
import { reshapeMetricRows } from './metric-reshape.js';
import type { CounterRow, HistogramRow } from './state-store.js';

/** The ledger of applied versions; created before any migration runs. */
export const SCHEMA_MIGRATIONS_TABLE_SQL = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
  )`;

/** One forward-only schema step of the SQLite state database. */
export interface SqliteMigration {
  /** Strictly increasing, starting at 1; never renumbered once released. */
  readonly version: number;
  readonly name: string;
  /** Statements run with `exec`, inside the transaction that records the version. */
  readonly sql: string;
  /** Data changes that SQL cannot express exactly; runs after `sql`, in the same transaction. */
  readonly data?: (db: MigrationDb) => void;
}

/** The part of a better-sqlite3 connection a data migration uses. */
export interface MigrationDb {
  prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
}

/**
 * The schema history. Append new steps; never edit a released one (databases in the
 * field already ran it). Stack identity is always the (org, project, stack) triple.
 */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE stacks (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        last_update INTEGER,
        resource_count INTEGER,
        synced_last_update INTEGER,
        cursor_version INTEGER NOT NULL DEFAULT 0,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (org, project, stack)
      ) WITHOUT ROWID;

      CREATE TABLE exported_updates (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        update_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        result TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        end_time INTEGER NOT NULL,
        exported_at_ms INTEGER NOT NULL,
        PRIMARY KEY (org, project, stack, update_id)
      ) WITHOUT ROWID;

      CREATE TABLE in_progress (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        update_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        start_time INTEGER NOT NULL,
        PRIMARY KEY (org, project, stack, update_id)
      ) WITHOUT ROWID;

      CREATE TABLE counters (
        name TEXT NOT NULL,
        labels_key TEXT NOT NULL,
        labels_json TEXT NOT NULL,
        value REAL NOT NULL CHECK (value >= 0),
        PRIMARY KEY (name, labels_key)
      ) WITHOUT ROWID;

      CREATE TABLE histograms (
        name TEXT NOT NULL,
        labels_key TEXT NOT NULL,
        labels_json TEXT NOT NULL,
        buckets_json TEXT NOT NULL,
        bucket_counts_json TEXT NOT NULL,
        sum REAL NOT NULL,
        count INTEGER NOT NULL CHECK (count >= 0),
        PRIMARY KEY (name, labels_key)
      ) WITHOUT ROWID;

      CREATE TABLE last_updates (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        kind TEXT NOT NULL,
        result TEXT NOT NULL,
        end_time INTEGER NOT NULL,
        PRIMARY KEY (org, project, stack, kind)
      ) WITHOUT ROWID;

      CREATE TABLE last_success (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        end_time INTEGER NOT NULL,
        PRIMARY KEY (org, project, stack)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'unlisted stacks and per-org update ledger',
    // Stacks that leave the org's list are hidden (listed = 0) instead of deleted, so their
    // cursor and first-seen time survive a relisting. The index serves the per-org ledger
    // lookup (Pulumi keeps update ids across a stack rename). It is not UNIQUE: a version-1
    // database may already hold one id under two stack names of an org.
    sql: `
      ALTER TABLE stacks ADD COLUMN listed INTEGER NOT NULL DEFAULT 1 CHECK (listed IN (0, 1));
      CREATE INDEX exported_updates_org_update_id ON exported_updates (org, update_id);
    `,
  },
  {
    version: 3,
    name: 'metric cardinality budget, exemplars, last update duration, metrics stamp',
    // metrics_stamp grows with every write a scrape would see (see StateStore.readMetricsStamp).
    // The last update's duration is taken from the ledger row with the same end time (the
    // newest version when several match).
    sql: `
      CREATE TABLE metrics_stamp (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        stamp INTEGER NOT NULL
      );
      INSERT INTO metrics_stamp (id, stamp) VALUES (1, 1);
      ALTER TABLE histograms ADD COLUMN exemplars_json TEXT;
      ALTER TABLE last_updates ADD COLUMN duration_seconds REAL;
      UPDATE last_updates SET duration_seconds = (
        SELECT max(0, e.end_time - e.start_time) FROM exported_updates e
        WHERE e.org = last_updates.org AND e.project = last_updates.project AND e.stack = last_updates.stack
          AND e.kind = last_updates.kind AND e.end_time = last_updates.end_time
        ORDER BY e.version DESC LIMIT 1
      );
    `,
    data: reshapeStoredMetrics,
  },
  {
    version: 4,
    name: 'follow records of running updates',
    // One row per update followed while it runs (StateStore.recordFollow); sent_span_ids is a
    // JSON array of the step span ids already sent. Deleted with the update's commit.
    sql: `
      CREATE TABLE follow_records (
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        stack TEXT NOT NULL,
        update_id TEXT NOT NULL,
        events_read INTEGER NOT NULL CHECK (events_read >= 0),
        continuation_token TEXT,
        sent_span_ids TEXT NOT NULL,
        PRIMARY KEY (org, project, stack, update_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'preview cursor',
    // Where a stack's preview listing resumes (StackRecord.previewCursor); NULL = never listed.
    sql: `
      ALTER TABLE stacks ADD COLUMN preview_cursor_version INTEGER;
      ALTER TABLE stacks ADD COLUMN preview_cursor_start INTEGER;
    `,
  },
  {
    version: 6,
    name: 'recent updates index',
    // The status page's recent updates (RECENT_UPDATES_SQL) read in index order, not by sorting the ledger.
    sql: `
      CREATE INDEX exported_updates_recent ON exported_updates (end_time DESC, version DESC, org, project, stack);
    `,
  },
];

interface CounterDbRow {
  name: string;
  labels_json: string;
  value: number;
}

/** A row of the histograms table as stored (schema version 3). */
export interface HistogramDbRow {
  name: string;
  labels_json: string;
  buckets_json: string;
  bucket_counts_json: string;
  sum: number;
  count: number;
  /** NULL for rows without exemplars. */
  exemplars_json: string | null;
}

/** Rewrites the counters and histograms tables in the shape of reshapeMetricRows. */
function reshapeStoredMetrics(db: MigrationDb): void {
  const counters = (db.prepare('SELECT name, labels_json, value FROM counters').all() as CounterDbRow[]).map(
    (r): CounterRow => ({ name: r.name, labels: JSON.parse(r.labels_json) as Record<string, string>, value: r.value }),
  );
  const histograms = (
    db.prepare('SELECT * FROM histograms').all() as HistogramDbRow[]
  ).map(
    (r): HistogramRow => ({
      name: r.name,
      labels: JSON.parse(r.labels_json) as Record<string, string>,
      buckets: JSON.parse(r.buckets_json) as number[],
      bucketCounts: JSON.parse(r.bucket_counts_json) as number[],
      sum: r.sum,
      count: r.count,
    }),
  );
  const reshaped = reshapeMetricRows({ counters, histograms });
  db.prepare('DELETE FROM counters').run();
  db.prepare('DELETE FROM histograms').run();
  const insertCounter = db.prepare('INSERT INTO counters (name, labels_key, labels_json, value) VALUES (?, ?, ?, ?)');
  for (const c of reshaped.counters) insertCounter.run(c.name, labelsKey(c.labels), JSON.stringify(c.labels), c.value);
  const insertHistogram = db.prepare(
    `INSERT INTO histograms (name, labels_key, labels_json, buckets_json, bucket_counts_json, sum, count)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const h of reshaped.histograms) {
    insertHistogram.run(
      h.name,
      labelsKey(h.labels),
      JSON.stringify(h.labels),
      JSON.stringify(h.buckets),
      JSON.stringify(h.bucketCounts),
      h.sum,
      h.count,
    );
  }
}

/** The schema version this build writes. */
export const SQLITE_SCHEMA_VERSION: number = Math.max(0, ...SQLITE_MIGRATIONS.map((m) => m.version));

/**
 * Which migrations still have to run, given the versions a database already recorded (both
 * stores). Refuses a database written by a newer exporter: its schema may mean things this
 * build does not know, and writing to it could corrupt the counters that build relies on.
 * `database` names a server database (its URL without the password); a SQLite file is not named.
 */
export function pendingMigrations(
  appliedVersions: readonly number[],
  migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS,
  database?: string,
): SqliteMigration[] {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const newest = Math.max(0, ...appliedVersions);
  if (newest > known) {
    throw new ExporterError(
      'STATE_MIGRATION_FAILED',
      `state database${database === undefined ? '' : ` ${database}`} has schema version ${newest}, newer than the ${known} this exporter knows; ` +
        `run a newer exporter release or point state.path at another ${database === undefined ? 'file' : 'database'} (downgrades are not supported)`,
      { details: { ...(database === undefined ? {} : { database }), databaseVersion: newest, knownVersion: known } },
    );
  }
  const applied = new Set(appliedVersions);
  return [...migrations].sort((a, b) => a.version - b.version).filter((m) => !applied.has(m.version));
}
