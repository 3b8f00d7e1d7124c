/** One forward-only schema step of the PostgreSQL state database. */
export interface PostgresMigration {
  /** Strictly increasing, starting at 1; never renumbered once released. */
  readonly version: number;
  readonly name: string;
  /** Run inside the transaction that records the version. */
  readonly sql: string;
}

/** The ledger of applied versions; created (idempotently) under the migration lock. */
export const POSTGRES_MIGRATIONS_TABLE_SQL = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/**
 * Key of the session advisory lock held while migrating, so that of several replicas
 * starting at once one applies the migrations and the others wait for it.
 * (The bytes of "pue-migr" read as a 64-bit integer.)
 */
export const MIGRATION_LOCK_KEY = '8103592592376476274';

/**
 * The schema history. Append new steps; never edit a released one. Stack identity is the
 * (org, project, stack) triple, as in the SQLite store; unix times are bigint seconds or ms.
 */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE stacks (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        last_update bigint,
        resource_count bigint,
        synced_last_update bigint,
        cursor_version bigint NOT NULL DEFAULT 0,
        first_seen_ms bigint NOT NULL,
        listed boolean NOT NULL DEFAULT true,
        PRIMARY KEY (org, project, stack)
      );

      -- The ledger is per org (Pulumi keeps update ids across a stack rename): the unique
      -- key makes "already exported" an atomic insert conflict between replicas.
      CREATE TABLE exported_updates (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        update_id text NOT NULL,
        kind text NOT NULL,
        version bigint NOT NULL,
        result text NOT NULL,
        start_time bigint NOT NULL,
        end_time bigint NOT NULL,
        exported_at_ms bigint NOT NULL,
        PRIMARY KEY (org, update_id)
      );
      CREATE INDEX exported_updates_stack ON exported_updates (org, project, stack);

      CREATE TABLE in_progress (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        update_id text NOT NULL,
        kind text NOT NULL,
        version bigint NOT NULL,
        start_time bigint NOT NULL,
        PRIMARY KEY (org, project, stack, update_id)
      );

      CREATE TABLE counters (
        name text NOT NULL,
        labels_key text NOT NULL,
        labels_json text NOT NULL,
        value double precision NOT NULL CHECK (value >= 0),
        PRIMARY KEY (name, labels_key)
      );

      CREATE TABLE histograms (
        name text NOT NULL,
        labels_key text NOT NULL,
        labels_json text NOT NULL,
        buckets double precision[] NOT NULL,
        bucket_counts bigint[] NOT NULL,
        sum double precision NOT NULL,
        count bigint NOT NULL CHECK (count >= 0),
        PRIMARY KEY (name, labels_key)
      );

      CREATE TABLE last_updates (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        kind text NOT NULL,
        result text NOT NULL,
        end_time bigint NOT NULL,
        PRIMARY KEY (org, project, stack, kind)
      );

      CREATE TABLE last_success (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        end_time bigint NOT NULL,
        PRIMARY KEY (org, project, stack)
      );
    `,
  },
  {
    version: 2,
    name: 'replicas, stack leases and leader lease',
    // Expiry times are the database's clock, so replicas with skewed clocks agree.
    sql: `
      CREATE TABLE replicas (
        owner text PRIMARY KEY,
        expires_at timestamptz NOT NULL
      );

      CREATE TABLE stack_leases (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        owner text,
        expires_at timestamptz NOT NULL DEFAULT '-infinity',
        PRIMARY KEY (org, project, stack)
      );
      CREATE INDEX stack_leases_owner ON stack_leases (owner);

      CREATE TABLE leader_lease (
        id integer PRIMARY KEY CHECK (id = 1),
        owner text,
        expires_at timestamptz NOT NULL DEFAULT '-infinity'
      );
      INSERT INTO leader_lease (id) VALUES (1);
    `,
  },
  {
    version: 3,
    name: 'metric exemplars, last-update durations and the metrics stamp',
    // Mirrors SQLite schema 3. PostgreSQL support arrived in the same release as that shape,
    // so no database holds rows of the older label shape and no rewrite of them is needed.
    sql: `
      ALTER TABLE histograms ADD COLUMN exemplars_json text;
      ALTER TABLE last_updates ADD COLUMN duration_seconds double precision;
      -- Grows in the transaction of every write a scrape would see (StateStore.readMetricsStamp).
      CREATE TABLE metrics_stamp (
        id integer PRIMARY KEY CHECK (id = 1),
        stamp bigint NOT NULL
      );
      INSERT INTO metrics_stamp (id, stamp) VALUES (1, 0);
    `,
  },
  {
    version: 4,
    name: 'follow records of running updates',
    // Mirrors SQLite schema 4: one row per update followed while it runs, deleted with its commit.
    sql: `
      CREATE TABLE follow_records (
        org text NOT NULL,
        project text NOT NULL,
        stack text NOT NULL,
        update_id text NOT NULL,
        events_read bigint NOT NULL CHECK (events_read >= 0),
        continuation_token text,
        sent_span_ids text[] NOT NULL,
        PRIMARY KEY (org, project, stack, update_id)
      );
    `,
  },
  {
    version: 5,
    name: 'preview cursor',
    // Mirrors SQLite schema 5: where a stack's preview listing resumes; NULL = never listed.
    sql: `
      ALTER TABLE stacks ADD COLUMN preview_cursor_version bigint;
      ALTER TABLE stacks ADD COLUMN preview_cursor_start bigint;
    `,
  },
  {
    version: 6,
    name: 'recent updates index',
    // Mirrors SQLite schema 6: the status page's recent updates read in index order.
    sql: `
      CREATE INDEX exported_updates_recent ON exported_updates (end_time DESC, version DESC, org, project, stack);
    `,
  },
  {
    version: 7,
    name: 'metrics changes',
    // PostgreSQL only (SQLite keeps this in memory: it has one writer). Every write that moves
    // the metrics stamp records here, under the stamp it moved to, the series and stacks it
    // touched (at least one row per stamp), so the leader's scrape re-reads just those,
    // whichever replica wrote them (StateStore.readMetricsChanges).
    sql: `
      CREATE TABLE metrics_changes (
        stamp bigint NOT NULL,
        series_name text,
        labels_key text,
        org text,
        project text,
        stack text
      );
      CREATE INDEX metrics_changes_stamp ON metrics_changes (stamp);
    `,
  },
];

/** The schema version this build writes. */
export const POSTGRES_SCHEMA_VERSION: number = Math.max(0, ...POSTGRES_MIGRATIONS.map((m) => m.version));
