import pg from 'pg';
import { labelsKey } from '../domain/metric-delta.js';
import type { CounterDelta, Exemplar, HistogramObservation, Labels } from '../domain/metric-delta.js';
import type { StackRef, StackSummary } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';
import { ExporterError, isExporterError } from '../errors.js';
import { silentLogger } from '../logging/logger.js';
import type { Logger } from '../logging/logger.js';
import { redact } from '../secrets.js';
import {
  bucketIndex,
  bucketMismatch,
  canonicalLabels,
  checkCommit,
  checkCounterDelta,
  checkCursorVersion,
  checkObservation,
  checkOrg,
  checkPreviewCursor,
  checkSameStack,
  sameBuckets,
  parseExemplars,
  stackCommitFacts,
  type StackCommitFacts,
} from './delta-rules.js';
import { checkFollowRecord, mergeSpanIds } from './follow-rules.js';
import { describePostgresUrl } from './postgres-url.js';
import {
  MIGRATION_LOCK_KEY,
  POSTGRES_MIGRATIONS,
  POSTGRES_MIGRATIONS_TABLE_SQL,
} from './postgres-migrations.js';
import { pendingMigrations } from './sqlite-migrations.js';
import {
  IN_PROGRESS_SQL,
  RECENT_UPDATES_SQL,
  RUNNING_SET_SQL,
  runningSetRows,
  toExportedUpdate,
  toInProgressRecord,
  toLastSuccessRow,
  toLastUpdateRow,
  toStackRecord,
  type ExportedUpdateRow,
  type InProgressRow,
  type LastSuccessDbRow,
  type LastUpdateDbRow,
  type RunningSetRow,
  type StackRow,
} from './stack-row.js';
import type {
  CounterRow,
  ExportedUpdate,
  FollowRecord,
  HistogramRow,
  InProgressRecord,
  LastSuccessRow,
  LastUpdateRow,
  MetricsChangeRows,
  PreviewCursor,
  StackRecord,
  StateStore,
  UpdateCommit,
} from './state-store.js';
import { seriesRef } from './metrics-change-log.js';

export interface PostgresStateStoreOptions {
  /** postgres:// or postgresql:// URL; anything it leaves out comes from the PG* variables. */
  readonly url: string;
  readonly logger?: Logger;
  /** Pooled connections; default 5. */
  readonly maxConnections?: number;
  /** Server-side statement_timeout of every connection; default 30000. */
  readonly statementTimeoutMillis?: number;
  /** Sent as application_name, so operators can tell replicas apart in pg_stat_activity. */
  readonly applicationName?: string;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/** bigint (int8) and bigint[] come back as numbers: every stored integer is a safe integer. */
const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;
const TYPES = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID) return (value: string) => Number(value);
    // Only histogram bucket counts are bigint[]: never NULL, never nested.
    if (oid === INT8_ARRAY_OID) return (value: string) => (value === '{}' ? [] : value.slice(1, -1).split(',').map(Number));
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

/** Deadlock and serialization failures: the transaction is run again from the start. */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);
const TRANSACTION_ATTEMPTS = 4;

/** The same ledger lookup as the SQLite store: update ids are unique within an org. */
const EXPORTED_IN_ORG_SQL = 'SELECT 1 FROM exported_updates WHERE org = $1 AND update_id = $2';

/**
 * The StateStore on PostgreSQL (node-postgres pool, parameterised queries). Several
 * exporter replicas may share one database: every write that can race is an upsert or
 * runs in a transaction, and a commit can be made conditional on a stack lease (see
 * PostgresCoordinator), so a replica that lost the stack commits nothing.
 */
export class PostgresStateStore implements StateStore {
  /** The pool, shared with the PostgresCoordinator of the same replica. */
  readonly pool: pg.Pool;
  /** The URL with its password hidden, for logs and error details. */
  readonly target: string;
  private readonly logger: Logger;
  private closed = false;

  constructor(options: PostgresStateStoreOptions) {
    this.target = describePostgresUrl(options.url);
    this.logger = options.logger ?? silentLogger();
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 5,
      statement_timeout: options.statementTimeoutMillis ?? 30_000,
      application_name: options.applicationName ?? 'pulumi-update-exporter',
      connectionTimeoutMillis: 10_000,
      types: TYPES,
    });
    // An idle connection that the server drops must not crash the process; the next
    // query opens a new one.
    this.pool.on('error', (err) => {
      this.logger.warn({ error: redact(err.message), database: this.target }, 'idle PostgreSQL connection failed');
    });
  }

  async migrate(): Promise<void> {
    const client = await this.connect('migrate');
    try {
      // A session lock, not a transaction lock: each migration commits on its own, and the
      // replicas that start at the same time wait here until the first one has finished.
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        await client.query(POSTGRES_MIGRATIONS_TABLE_SQL);
        const applied = (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
          (r) => r.version,
        );
        for (const migration of pendingMigrations(applied, POSTGRES_MIGRATIONS, this.target)) {
          try {
            await client.query('BEGIN');
            await client.query(migration.sql);
            await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
              migration.version,
              migration.name,
            ]);
            await client.query('COMMIT');
          } catch (cause) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw new ExporterError(
              'STATE_MIGRATION_FAILED',
              `state schema migration ${migration.version} (${migration.name}) failed: ${messageOf(cause)}`,
              { cause, details: { database: this.target, version: migration.version } },
            );
          }
          this.logger.info({ version: migration.version, migration: migration.name }, 'applied state schema migration');
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      }
    } catch (err) {
      throw this.wrap('migrate', err);
    } finally {
      client.release();
    }
  }

  /** The newest schema version recorded in the database (0 before the first migrate()). */
  async schemaVersion(): Promise<number> {
    return this.query('read schema version', async (db) => {
      const table = await db.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
      if (table.rows[0]?.present !== true) return 0;
      const r = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      return r.rows[0]?.v ?? 0;
    });
  }

  async ping(): Promise<void> {
    await this.query('ping', (db) => db.query('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pool.end();
    } catch (cause) {
      throw this.wrap('close', cause);
    }
  }

  async replaceOrgStacks(org: string, stacks: readonly StackSummary[], nowMs: number): Promise<void> {
    for (const s of stacks) checkOrg(org, s);
    // Sorted, so replicas that list the same org at once lock its rows in the same order.
    const sorted = [...stacks].sort((a, b) => compare(stackKey(a), stackKey(b)));
    const projects = sorted.map((s) => s.project);
    const names = sorted.map((s) => s.stack);
    await this.transaction('replaceOrgStacks', async (db) => {
      // A relisted stack keeps its cursor and first-seen time but is synced again.
      // Rows actually changed: an unchanged stack list (every poll cycle) must not move the
      // metrics stamp, or every cycle would discard the rendered scrape.
      const touched = new Map<string, StackRef>();
      const touch = (rows: readonly { project: string; stack: string }[]): void => {
        for (const r of rows) touched.set(`${r.project}/${r.stack}`, { org, project: r.project, stack: r.stack });
      };
      const upserted = await db.query<{ project: string; stack: string }>(
        `INSERT INTO stacks (org, project, stack, last_update, resource_count, cursor_version, first_seen_ms, listed)
         SELECT $1, p, s, lu, rc, 0, $6, true
         FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS t(p, s, lu, rc)
         ON CONFLICT (org, project, stack) DO UPDATE SET
           last_update = excluded.last_update, resource_count = excluded.resource_count,
           synced_last_update = CASE WHEN stacks.listed THEN stacks.synced_last_update END,
           listed = true
         WHERE NOT stacks.listed OR stacks.last_update IS DISTINCT FROM excluded.last_update
           OR stacks.resource_count IS DISTINCT FROM excluded.resource_count
         RETURNING project, stack`,
        [org, projects, names, sorted.map((s) => s.lastUpdate ?? null), sorted.map((s) => s.resourceCount ?? null), nowMs],
      );
      touch(upserted.rows);
      const unlisted = `org = $1 AND (project, stack) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))`;
      // Hidden, not deleted: counters and the ledger stay, so the stack is never recounted.
      touch((await db.query<{ project: string; stack: string }>(`UPDATE stacks SET listed = false WHERE listed AND ${unlisted} RETURNING project, stack`, [org, projects, names])).rows);
      for (const table of ['in_progress', 'last_updates', 'last_success']) {
        touch((await db.query<{ project: string; stack: string }>(`DELETE FROM ${table} WHERE ${unlisted} RETURNING project, stack`, [org, projects, names])).rows);
      }
      if (touched.size > 0) await bumpMetricsStamp(db, [], [...touched.values()]);
    });
  }

  async listStacks(): Promise<StackRecord[]> {
    return this.query('listStacks', async (db) =>
      (await db.query<StackRow>('SELECT * FROM stacks WHERE listed ORDER BY org, project, stack')).rows.map(toStackRecord),
    );
  }

  async getStack(ref: StackRef): Promise<StackRecord | undefined> {
    return this.query('getStack', async (db) => {
      const r = await db.query<StackRow>('SELECT * FROM stacks WHERE org = $1 AND project = $2 AND stack = $3 AND listed', [
        ref.org,
        ref.project,
        ref.stack,
      ]);
      const row = r.rows[0];
      return row === undefined ? undefined : toStackRecord(row);
    });
  }

  async markStackSynced(ref: StackRef, lastUpdate: number | undefined): Promise<void> {
    await this.query('markStackSynced', (db) =>
      db.query('UPDATE stacks SET synced_last_update = $4 WHERE org = $1 AND project = $2 AND stack = $3 AND listed', [
        ref.org,
        ref.project,
        ref.stack,
        lastUpdate ?? null,
      ]),
    );
  }

  async advanceCursor(ref: StackRef, version: number): Promise<void> {
    checkCursorVersion(ref, version);
    await this.query('advanceCursor', (db) =>
      db.query(
        `UPDATE stacks SET cursor_version = GREATEST(cursor_version, $4)
         WHERE org = $1 AND project = $2 AND stack = $3 AND listed`,
        [ref.org, ref.project, ref.stack, version],
      ),
    );
  }

  async resetCursor(ref: StackRef): Promise<void> {
    await this.query('resetCursor', (db) =>
      db.query(
        `UPDATE stacks SET cursor_version = 0, preview_cursor_version = NULL, preview_cursor_start = NULL
         WHERE org = $1 AND project = $2 AND stack = $3 AND listed`,
        [ref.org, ref.project, ref.stack],
      ),
    );
  }

  async setPreviewCursor(ref: StackRef, cursor: PreviewCursor): Promise<void> {
    checkPreviewCursor(ref, cursor);
    await this.query('setPreviewCursor', (db) =>
      db.query(
        `UPDATE stacks SET preview_cursor_version = $4, preview_cursor_start = $5
         WHERE org = $1 AND project = $2 AND stack = $3 AND listed`,
        [ref.org, ref.project, ref.stack, cursor.version, cursor.startTime],
      ),
    );
  }

  async commitUpdate(commit: UpdateCommit): Promise<boolean> {
    return (await this.commitUpdates([commit]))[0] === true;
  }

  async commitUpdates(commits: readonly UpdateCommit[]): Promise<boolean[]> {
    for (const commit of commits) {
      checkCommit(commit);
      for (const delta of commit.deltas.counters) checkCounterDelta(delta);
      for (const obs of commit.deltas.histograms) checkObservation(obs);
    }
    return this.transaction('commitUpdates', async (db) => {
      // The lease of each stack (and owner) once, before anything is written.
      const leases = new Map<string, UpdateCommit & { readonly leaseOwner: string }>();
      for (const c of commits) {
        const key = `${stackKey(c.update.stack)}\n${c.leaseOwner}`;
        if (c.leaseOwner !== undefined && !leases.has(key)) leases.set(key, { ...c, leaseOwner: c.leaseOwner });
      }
      for (const c of leases.values()) await checkLease(db, c);
      const committed: boolean[] = [];
      for (const commit of commits) committed.push(await recordExported(db, commit));
      const added = commits.filter((_, i) => committed[i]);
      if (added.length === 0) return committed;
      const facts = stackCommitFacts(added);
      for (const f of facts) await applyStackFacts(db, f);
      // Added up per series over the updates, in one order for every replica, so two commits
      // touching the same series cannot deadlock. One statement for every counter and one
      // for every histogram series.
      const counters = sumCounters(added.flatMap((c) => c.deltas.counters)).sort((a, b) => compare(seriesKey(a), seriesKey(b)));
      const histograms = histogramSeries(added.flatMap((c) => c.deltas.histograms)).sort((a, b) => compare(seriesKey(a), seriesKey(b)));
      if (counters.length > 0) {
        await db.query(
          `INSERT INTO counters (name, labels_key, labels_json, value)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[])
           ON CONFLICT (name, labels_key) DO UPDATE SET value = counters.value + excluded.value`,
          [counters.map((c) => c.name), counters.map((c) => labelsKey(c.labels)), counters.map((c) => labelsJson(c.labels)), counters.map((c) => c.value)],
        );
      }
      if (histograms.length > 0) await addHistogramSeries(db, histograms);
      await bumpMetricsStamp(db, [...counters, ...histograms], facts.map((f) => f.stack));
      return committed;
    });
  }

  async isExported(ref: StackRef, updateId: string): Promise<boolean> {
    return this.query('isExported', async (db) => ((await db.query(EXPORTED_IN_ORG_SQL, [ref.org, updateId])).rowCount ?? 0) > 0);
  }

  async countExported(ref?: StackRef): Promise<number> {
    return this.query('countExported', async (db) => {
      const r =
        ref === undefined
          ? await db.query<{ n: number }>('SELECT count(*) AS n FROM exported_updates')
          : await db.query<{ n: number }>(
              'SELECT count(*) AS n FROM exported_updates WHERE org = $1 AND project = $2 AND stack = $3',
              [ref.org, ref.project, ref.stack],
            );
      return r.rows[0]?.n ?? 0;
    });
  }

  async listRecentUpdates(limit: number): Promise<ExportedUpdate[]> {
    return this.query('listRecentUpdates', async (db) =>
      (await db.query<ExportedUpdateRow>(`${RECENT_UPDATES_SQL} LIMIT $1`, [Math.max(0, Math.floor(limit))])).rows.map(toExportedUpdate),
    );
  }

  async readFollow(ref: StackRef, updateId: string): Promise<FollowRecord | undefined> {
    return this.query('readFollow', async (db) => {
      const r = await db.query<{ events_read: number; continuation_token: string | null; sent_span_ids: string[] }>(
        `SELECT events_read, continuation_token, sent_span_ids FROM follow_records
         WHERE org = $1 AND project = $2 AND stack = $3 AND update_id = $4`,
        [ref.org, ref.project, ref.stack, updateId],
      );
      const row = r.rows[0];
      if (row === undefined) return undefined;
      return { stack: ref, updateId, eventsRead: row.events_read, continuationToken: row.continuation_token, sentSpanIds: [...row.sent_span_ids].sort() };
    });
  }

  async recordFollow(record: FollowRecord): Promise<void> {
    checkFollowRecord(record);
    const { stack: s, updateId } = record;
    await this.transaction('recordFollow', async (db) => {
      // The row lock orders replicas recording the same update: the set is merged, never replaced.
      const stored = await db.query<{ sent_span_ids: string[] }>(
        `SELECT sent_span_ids FROM follow_records WHERE org = $1 AND project = $2 AND stack = $3 AND update_id = $4 FOR UPDATE`,
        [s.org, s.project, s.stack, updateId],
      );
      const sent = mergeSpanIds(stored.rows[0]?.sent_span_ids ?? [], record.sentSpanIds);
      await db.query(
        `INSERT INTO follow_records (org, project, stack, update_id, events_read, continuation_token, sent_span_ids)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org, project, stack, update_id) DO UPDATE SET
           events_read = excluded.events_read, continuation_token = excluded.continuation_token,
           sent_span_ids = ARRAY(SELECT DISTINCT unnest(follow_records.sent_span_ids || excluded.sent_span_ids) ORDER BY 1)`,
        [s.org, s.project, s.stack, updateId, record.eventsRead, record.continuationToken, sent],
      );
    });
  }

  async setInProgress(ref: StackRef, updates: readonly InProgressRecord[]): Promise<void> {
    for (const u of updates) checkSameStack(ref, u.stack, `in-progress update ${u.updateId}`);
    await this.transaction('setInProgress', async (db) => {
      // Every sync sets the running set; only a different one may move the metrics stamp.
      const before = await db.query<RunningSetRow>(RUNNING_SET_SQL((n) => `$${n}`), [ref.org, ref.project, ref.stack]);
      if (JSON.stringify(before.rows) === JSON.stringify(runningSetRows(updates))) return;
      await db.query('DELETE FROM in_progress WHERE org = $1 AND project = $2 AND stack = $3', [ref.org, ref.project, ref.stack]);
      for (const u of updates) {
        await db.query(
          `INSERT INTO in_progress (org, project, stack, update_id, kind, version, start_time)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (org, project, stack, update_id) DO UPDATE SET
             kind = excluded.kind, version = excluded.version, start_time = excluded.start_time`,
          [ref.org, ref.project, ref.stack, u.updateId, u.kind, u.version, u.startTime],
        );
      }
      await bumpMetricsStamp(db, [], [ref]);
    });
  }

  async listInProgress(): Promise<InProgressRecord[]> {
    return this.query('listInProgress', async (db) => (await db.query<InProgressRow>(IN_PROGRESS_SQL)).rows.map(toInProgressRecord));
  }

  async readMetricsStamp(): Promise<number> {
    return this.query('readMetricsStamp', async (db) => {
      const r = await db.query<{ stamp: number }>('SELECT stamp FROM metrics_stamp WHERE id = 1');
      return r.rows[0]?.stamp ?? 0;
    });
  }

  async readMetricsStartMs(): Promise<number> {
    return this.query('readMetricsStartMs', async (db) => {
      const r = await db.query<{ ms: number }>(
        'SELECT floor(extract(epoch FROM min(applied_at)) * 1000)::float8 AS ms FROM schema_migrations',
      );
      return r.rows[0]?.ms ?? 0;
    });
  }

  async readCounters(): Promise<CounterRow[]> {
    return this.query('readCounters', async (db) =>
      (
        await db.query<{ name: string; labels_json: string; value: number }>(
          'SELECT name, labels_json, value FROM counters ORDER BY name, labels_key',
        )
      ).rows.map((r) => ({ name: r.name, labels: parseLabels(r.labels_json), value: r.value })),
    );
  }

  async readHistograms(): Promise<HistogramRow[]> {
    return this.query('readHistograms', async (db) =>
      (
        await db.query<HistogramDbRow>('SELECT name, labels_json, buckets, bucket_counts, sum, count, exemplars_json FROM histograms ORDER BY name, labels_key')
      ).rows.map(toHistogramRow),
    );
  }

  async readLastUpdates(): Promise<LastUpdateRow[]> {
    return this.query('readLastUpdates', async (db) =>
      (
        await db.query<LastUpdateDbRow>('SELECT * FROM last_updates ORDER BY org, project, stack, kind')
      ).rows.map(toLastUpdateRow),
    );
  }

  async readLastSuccesses(): Promise<LastSuccessRow[]> {
    return this.query('readLastSuccesses', async (db) =>
      (
        await db.query<LastSuccessDbRow>('SELECT * FROM last_success ORDER BY org, project, stack')
      ).rows.map(toLastSuccessRow),
    );
  }

  async readMetricsChanges(since: number): Promise<MetricsChangeRows | undefined> {
    const rows = await this.readChangedRows(since);
    // The reader asks after the stamp it got next time; rows up to the one it asked after are
    // not needed again (a failed render asks after the same stamp, so those stay).
    await this.query('pruneMetricsChanges', (db) => db.query('DELETE FROM metrics_changes WHERE stamp <= $1', [since]));
    return rows;
  }

  private async readChangedRows(since: number): Promise<MetricsChangeRows | undefined> {
    return this.transaction('readMetricsChanges', async (db) => {
      // One snapshot for the stamp, the change rows and the rows they name.
      await db.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const stamp = Number((await db.query<{ stamp: number }>('SELECT stamp FROM metrics_stamp WHERE id = 1')).rows[0]?.stamp ?? 0);
      if (since > stamp) return undefined;
      const range = [since, stamp];
      const recorded = await db.query<{ n: number }>('SELECT count(DISTINCT stamp)::float8 AS n FROM metrics_changes WHERE stamp > $1 AND stamp <= $2', range);
      // A stamp without rows was moved by a write that did not record (or its rows were pruned).
      if (Number(recorded.rows[0]?.n ?? 0) !== stamp - since) return undefined;
      const named = await db.query<{ series_name: string; labels_key: string }>(
        'SELECT DISTINCT series_name, labels_key FROM metrics_changes WHERE stamp > $1 AND stamp <= $2 AND series_name IS NOT NULL',
        range,
      );
      const touched = await db.query<{ org: string; project: string; stack: string }>(
        'SELECT DISTINCT org, project, stack FROM metrics_changes WHERE stamp > $1 AND stamp <= $2 AND org IS NOT NULL',
        range,
      );
      const seriesKeys = [named.rows.map((r) => r.series_name), named.rows.map((r) => r.labels_key)];
      const inSeries = '(name, labels_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))';
      const stackKeys = [touched.rows.map((r) => r.org), touched.rows.map((r) => r.project), touched.rows.map((r) => r.stack)];
      const inStacks = '(org, project, stack) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))';
      const counters = await db.query<{ name: string; labels_json: string; value: number }>(
        `SELECT name, labels_json, value FROM counters WHERE ${inSeries} ORDER BY name, labels_key`,
        seriesKeys,
      );
      const histograms = await db.query<HistogramDbRow>(
        `SELECT name, labels_json, buckets, bucket_counts, sum, count, exemplars_json FROM histograms WHERE ${inSeries} ORDER BY name, labels_key`,
        seriesKeys,
      );
      const stacks = await db.query<StackRow>(`SELECT * FROM stacks WHERE listed AND ${inStacks} ORDER BY org, project, stack`, stackKeys);
      const lastUpdates = await db.query<LastUpdateDbRow>(`SELECT * FROM last_updates WHERE ${inStacks} ORDER BY org, project, stack, kind`, stackKeys);
      const lastSuccesses = await db.query<LastSuccessDbRow>(`SELECT * FROM last_success WHERE ${inStacks} ORDER BY org, project, stack`, stackKeys);
      const inProgress = await db.query<InProgressRow>(
        `SELECT org, project, stack, update_id, kind, version, start_time FROM in_progress WHERE ${inStacks} ORDER BY org, project, stack, version, update_id`,
        stackKeys,
      );
      return {
        stamp,
        changes: {
          series: named.rows.map((r) => seriesRef(r.series_name, r.labels_key)),
          stacks: touched.rows.map((r) => ({ org: r.org, project: r.project, stack: r.stack })),
        },
        counters: counters.rows.map((r) => ({ name: r.name, labels: parseLabels(r.labels_json), value: r.value })),
        histograms: histograms.rows.map(toHistogramRow),
        stacks: stacks.rows.map(toStackRecord),
        lastUpdates: lastUpdates.rows.map(toLastUpdateRow),
        lastSuccesses: lastSuccesses.rows.map(toLastSuccessRow),
        inProgress: inProgress.rows.map(toInProgressRecord),
      };
    });
  }

  /** Runs `fn` with a pooled connection outside a transaction; errors leave as STATE_ERROR. */
  async query<T>(operation: string, fn: (db: Queryable) => Promise<T>): Promise<T> {
    const client = await this.connect(operation);
    try {
      return await fn(client);
    } catch (err) {
      throw this.wrap(operation, err);
    } finally {
      client.release();
    }
  }

  /**
   * Runs `fn` in one READ COMMITTED transaction, again from the start after a deadlock or
   * serialization failure (replicas writing the same rows), at most TRANSACTION_ATTEMPTS times.
   */
  async transaction<T>(operation: string, fn: (db: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect(operation);
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const state = (err as { code?: unknown }).code;
        if (typeof state === 'string' && RETRYABLE_SQLSTATES.has(state) && attempt < TRANSACTION_ATTEMPTS) {
          this.logger.debug({ operation, attempt, sqlstate: state }, 'state transaction conflicted with another replica; retrying');
          continue;
        }
        throw this.wrap(operation, err);
      } finally {
        client.release();
      }
    }
  }

  private async connect(operation: string): Promise<pg.PoolClient> {
    if (this.closed) {
      throw new ExporterError('STATE_ERROR', 'state store is closed', { details: { database: this.target } });
    }
    try {
      return await this.pool.connect();
    } catch (cause) {
      throw new ExporterError('STATE_ERROR', `cannot connect to state database ${this.target}: ${redact(messageOf(cause))}`, {
        cause,
        retryable: true,
        details: { database: this.target, operation },
      });
    }
  }

  private wrap(operation: string, err: unknown): ExporterError {
    if (isExporterError(err)) return err;
    return new ExporterError('STATE_ERROR', `state store ${operation} failed: ${redact(messageOf(err))}`, {
      cause: err,
      retryable: true,
      details: { database: this.target, operation },
    });
  }
}

/**
 * Throws STATE_LEASE_LOST unless `owner` holds the stack's lease, inside commitUpdates'
 * transaction. FOR KEY SHARE: a replica taking the lease over (FOR UPDATE SKIP LOCKED) passes
 * this row by until the commit ends, so the lease cannot change hands half-way; the holder's
 * own renewal (an UPDATE of expires_at) does not wait for the commit. A lease that lapsed but
 * is still in this replica's name had no other holder (taking it over changes the owner), so
 * nobody else exported the stack meanwhile: the commit stands, as the renewal keeps such a lease.
 */
async function checkLease(db: Queryable, commit: UpdateCommit & { readonly leaseOwner: string }): Promise<void> {
  const s = commit.update.stack;
  const held = await db.query(
    `SELECT 1 FROM stack_leases
     WHERE org = $1 AND project = $2 AND stack = $3 AND owner = $4
     FOR KEY SHARE`,
    [s.org, s.project, s.stack, commit.leaseOwner],
  );
  if (held.rowCount === 0) {
    const updateId = commit.update.updateId;
    throw new ExporterError('STATE_LEASE_LOST', `update ${updateId} of ${stackKey(s)} was not committed: this replica no longer holds the stack's lease`, {
      retryable: true,
      details: { stack: stackKey(s), updateId },
    });
  }
}

/**
 * The ledger row of one update, inside commitUpdates' transaction: false, writing nothing,
 * when the update is already in the ledger (under any stack of its org).
 */
async function recordExported(db: Queryable, commit: UpdateCommit): Promise<boolean> {
  const { update: u, exportedAtMs } = commit;
  const s = u.stack;
  const inserted = await db.query(
    `INSERT INTO exported_updates
       (org, project, stack, update_id, kind, version, result, start_time, end_time, exported_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (org, update_id) DO NOTHING`,
    [s.org, s.project, s.stack, u.updateId, u.kind, u.version, u.result, u.startTime, u.endTime, exportedAtMs],
  );
  return (inserted.rowCount ?? 0) > 0;
}

/** One stack's cursor, last-update facts and in-progress/follow rows after its committed updates (see stackCommitFacts). */
async function applyStackFacts(db: Queryable, facts: StackCommitFacts): Promise<void> {
  const s = facts.stack;
  // A commit does not relist a stack the org list hides; it only moves its cursor
  // (GREATEST with 0 for previews: they never move it).
  const stack = await db.query<{ listed: boolean }>(
    `INSERT INTO stacks (org, project, stack, cursor_version, first_seen_ms, listed) VALUES ($1, $2, $3, $4, $5, true)
     ON CONFLICT (org, project, stack) DO UPDATE SET cursor_version = GREATEST(stacks.cursor_version, excluded.cursor_version)
     RETURNING listed`,
    [s.org, s.project, s.stack, facts.cursorVersion, facts.firstSeenMs],
  );

  // Commits can arrive out of order; ">=" keeps the gauges on the newest end time.
  if (stack.rows[0]?.listed === true) {
    for (const u of facts.lastUpdates) {
      await db.query(
        `INSERT INTO last_updates (org, project, stack, kind, result, end_time, duration_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org, project, stack, kind) DO UPDATE SET
           result = excluded.result, end_time = excluded.end_time, duration_seconds = excluded.duration_seconds
         WHERE excluded.end_time >= last_updates.end_time`,
        [s.org, s.project, s.stack, u.kind, u.result, u.endTime, Math.max(0, u.endTime - u.startTime)],
      );
    }
    if (facts.lastSuccessEndTime !== undefined) {
      await db.query(
        `INSERT INTO last_success (org, project, stack, end_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org, project, stack) DO UPDATE SET end_time = excluded.end_time
         WHERE excluded.end_time >= last_success.end_time`,
        [s.org, s.project, s.stack, facts.lastSuccessEndTime],
      );
    }
  }

  const ids = [...facts.updateIds];
  await db.query('DELETE FROM in_progress WHERE org = $1 AND project = $2 AND stack = $3 AND update_id = ANY($4::text[])', [s.org, s.project, s.stack, ids]);
  await db.query('DELETE FROM follow_records WHERE org = $1 AND project = $2 AND stack = $3 AND update_id = ANY($4::text[])', [s.org, s.project, s.stack, ids]);
}

/** The deltas of one counter series added up (one row of the counters statement each). */
function sumCounters(deltas: readonly CounterDelta[]): CounterDelta[] {
  const sums = new Map<string, CounterDelta>();
  for (const d of deltas) {
    const key = seriesKey(d);
    const sum = sums.get(key);
    sums.set(key, sum === undefined ? d : { ...sum, value: sum.value + d.value });
  }
  return [...sums.values()];
}

/** A histogram series' observations of one commitUpdates call, added up as the SQLite store adds them. */
interface HistogramSeries {
  readonly name: string;
  readonly labels: Labels;
  readonly buckets: readonly number[];
  /** Per bucket slot (the last one is +Inf): how many observations fell in it. */
  readonly counts: number[];
  sum: number;
  count: number;
  /** The latest exemplar per slot from this commit (null where none), or undefined when none at all. */
  exemplars: (Exemplar | null)[] | undefined;
}

function histogramSeries(observations: readonly HistogramObservation[]): HistogramSeries[] {
  const series = new Map<string, HistogramSeries>();
  for (const obs of observations) {
    const key = seriesKey(obs);
    let s = series.get(key);
    if (s === undefined) {
      s = { name: obs.name, labels: obs.labels, buckets: obs.buckets, counts: new Array<number>(obs.buckets.length + 1).fill(0), sum: 0, count: 0, exemplars: undefined };
      series.set(key, s);
    } else if (!sameBuckets(s.buckets, obs.buckets)) {
      throw bucketMismatch(obs, s.buckets);
    }
    const slot = bucketIndex(obs.buckets, obs.value);
    s.counts[slot] = (s.counts[slot] as number) + 1;
    s.sum += obs.value;
    s.count += 1;
    if (obs.exemplar !== undefined) {
      s.exemplars ??= new Array<Exemplar | null>(obs.buckets.length + 1).fill(null);
      s.exemplars[slot] = { traceId: obs.exemplar.traceId, value: obs.value, timestamp: obs.exemplar.timestamp };
    }
  }
  return [...series.values()];
}

/**
 * Adds a commit's histogram series in one statement: a new series is inserted, a stored one
 * gets the bucket counts added slot by slot and keeps its exemplar in each slot this commit
 * brings none for. A stored series with other buckets (or a corrupt row) is left alone by
 * the statement and fails the commit.
 */
async function addHistogramSeries(db: Queryable, series: readonly HistogramSeries[]): Promise<void> {
  const rows = series.map((s) => ({
    name: s.name,
    labels_key: labelsKey(s.labels),
    labels_json: labelsJson(s.labels),
    buckets: s.buckets,
    counts: s.counts,
    sum: s.sum,
    count: s.count,
    exemplars: s.exemplars === undefined ? null : JSON.stringify(s.exemplars),
  }));
  const added = await db.query<{ name: string; labels_key: string }>(
    `INSERT INTO histograms AS h (name, labels_key, labels_json, buckets, bucket_counts, sum, count, exemplars_json)
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
       name text, labels_key text, labels_json text, buckets float8[], counts bigint[], sum float8, count bigint, exemplars text)
     ON CONFLICT (name, labels_key) DO UPDATE SET
       bucket_counts = ARRAY(
         SELECT stored + added FROM unnest(h.bucket_counts, excluded.bucket_counts) WITH ORDINALITY AS x(stored, added, slot) ORDER BY slot),
       sum = h.sum + excluded.sum,
       count = h.count + excluded.count,
       exemplars_json = CASE WHEN excluded.exemplars_json IS NULL THEN h.exemplars_json ELSE (
         SELECT jsonb_agg(CASE WHEN e = 'null' THEN COALESCE(h.exemplars_json::jsonb -> (slot::int - 1), 'null') ELSE e END ORDER BY slot)::text
         FROM jsonb_array_elements(excluded.exemplars_json::jsonb) WITH ORDINALITY AS x(e, slot)) END
     WHERE h.buckets = excluded.buckets AND cardinality(h.bucket_counts) = cardinality(h.buckets) + 1
     RETURNING h.name, h.labels_key`,
    [JSON.stringify(rows)],
  );
  if (added.rows.length === rows.length) return;
  const done = new Set(added.rows.map((r) => `${r.name} ${r.labels_key}`));
  for (const [i, row] of rows.entries()) {
    if (done.has(`${row.name} ${row.labels_key}`)) continue;
    const stored = await db.query<{ buckets: number[] }>('SELECT buckets FROM histograms WHERE name = $1 AND labels_key = $2', [row.name, row.labels_key]);
    const buckets = stored.rows[0]?.buckets ?? [];
    const s = series[i] as HistogramSeries;
    if (!sameBuckets(buckets, s.buckets)) throw bucketMismatch({ name: s.name, labels: s.labels, buckets: s.buckets, value: 0 }, buckets);
    throw new ExporterError('STATE_ERROR', `histogram ${s.name} has a corrupt bucket_counts row`);
  }
}

function seriesKey(series: { readonly name: string; readonly labels: Labels }): string {
  return `${series.name} ${labelsKey(series.labels)}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function labelsJson(labels: Labels): string {
  return JSON.stringify(canonicalLabels(labels));
}

interface HistogramDbRow {
  name: string;
  labels_json: string;
  buckets: number[];
  bucket_counts: number[];
  sum: number;
  count: number;
  exemplars_json: string | null;
}

function toHistogramRow(r: HistogramDbRow): HistogramRow {
  return {
    name: r.name,
    labels: parseLabels(r.labels_json),
    buckets: r.buckets,
    bucketCounts: r.bucket_counts,
    sum: r.sum,
    count: r.count,
    ...(r.exemplars_json === null ? {} : { exemplars: parseExemplars(r.exemplars_json) }),
  };
}

function parseLabels(json: string): Labels {
  return JSON.parse(json) as Labels;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const BUMP_METRICS_STAMP_SQL = 'UPDATE metrics_stamp SET stamp = stamp + 1 WHERE id = 1 RETURNING stamp';

/**
 * Stamps whose change rows writers keep when nobody reads them (a push-only deployment); a
 * scrape that last read before them reads everything. A reader deletes the rows it has read.
 */
const KEPT_CHANGE_STAMPS = 10_000;

/**
 * Moves the metrics stamp (inside the caller's transaction) and records under the new stamp
 * the series and stacks (each once) the write touched: one row each, or one empty row, so every stamp
 * has a row and a missing one means a write that did not record (see readMetricsChanges).
 */
async function bumpMetricsStamp(db: Queryable, series: readonly { name: string; labels: Labels }[], stacks: readonly StackRef[]): Promise<number> {
  const stamp = Number((await db.query<{ stamp: number }>(BUMP_METRICS_STAMP_SQL)).rows[0]?.stamp);
  const names: (string | null)[] = [];
  const keys: (string | null)[] = [];
  const orgs: (string | null)[] = [];
  const projects: (string | null)[] = [];
  const stackNames: (string | null)[] = [];
  const row = (name: string | null, key: string | null, ref: StackRef | null): void => {
    names.push(name);
    keys.push(key);
    orgs.push(ref?.org ?? null);
    projects.push(ref?.project ?? null);
    stackNames.push(ref?.stack ?? null);
  };
  for (const s of series) row(s.name, labelsKey(s.labels), null);
  for (const ref of stacks) row(null, null, ref);
  if (names.length === 0) row(null, null, null);
  await db.query(
    `INSERT INTO metrics_changes (stamp, series_name, labels_key, org, project, stack)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
    [stamp, names, keys, orgs, projects, stackNames],
  );
  if (stamp % 100 === 0) await db.query('DELETE FROM metrics_changes WHERE stamp <= $1', [stamp - KEPT_CHANGE_STAMPS]);
  return stamp;
}

