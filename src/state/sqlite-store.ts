import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { labelsKey } from '../domain/metric-delta.js';
import type { CounterDelta, Exemplar, HistogramObservation, Labels } from '../domain/metric-delta.js';
import type { StackRef, StackSummary } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';
import { ExporterError, isExporterError } from '../errors.js';
import { silentLogger } from '../logging/logger.js';
import type { Logger } from '../logging/logger.js';
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
import { MetricsChangeLog, type SeriesRef } from './metrics-change-log.js';
import { HistogramRowCache, type HistogramTotals } from './histogram-row-cache.js';
import { SCHEMA_MIGRATIONS_TABLE_SQL, SQLITE_SCHEMA_VERSION, pendingMigrations, type HistogramDbRow } from './sqlite-migrations.js';
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

export interface SqliteStateStoreOptions {
  /** Database file (its parent directories are created), or `:memory:` for a throwaway store. */
  readonly path: string;
  /** Used as given; the caller binds `{ module: 'state' }`. */
  readonly logger?: Logger;
  /** How long a write waits for another connection's lock before failing; default 5000. */
  readonly busyTimeoutMillis?: number;
}

interface SqliteStackRow extends StackRow {
  /** 0 once the org's stack list stopped listing the stack (schema version 2). */
  listed: number;
}


type Db = Database.Database;

const MEMORY_PATH = ':memory:';

/** Served by the (org, update_id) index of migration 2. */
const EXPORTED_IN_ORG_SQL = 'SELECT 1 FROM exported_updates WHERE org = ? AND update_id = ? LIMIT 1';
/** Run in every transaction that changes what a scrape reads (schema version 3). */
const BUMP_METRICS_STAMP_SQL = 'UPDATE metrics_stamp SET stamp = stamp + 1 WHERE id = 1 RETURNING stamp';

/**
 * The StateStore on a local SQLite file (better-sqlite3). Calls are synchronous
 * underneath; the Promise surface is the shared StateStore contract. The connection is
 * opened on first use; `migrate()` must run before anything else touches the tables.
 */
export class SqliteStateStore implements StateStore {
  private readonly path: string;
  private readonly logger: Logger;
  private readonly busyTimeoutMillis: number;
  private db: Db | undefined;
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();
  /** This process holds the file alone, so it sees every write: scrapes read only what changed. */
  private readonly changes = new MetricsChangeLog();
  /** Sole writer of the file, so commits need not read back the histogram rows they wrote. */
  private readonly histogramRows = new HistogramRowCache();

  constructor(options: SqliteStateStoreOptions) {
    if (options.path.length === 0) {
      throw new ExporterError('STATE_ERROR', 'state.path is empty; give a file path or :memory:');
    }
    this.path = options.path;
    this.logger = options.logger ?? silentLogger();
    this.busyTimeoutMillis = options.busyTimeoutMillis ?? 5000;
  }

  async migrate(): Promise<void> {
    // Migrations may rewrite the histogram rows.
    this.histogramRows.clear();
    const db = this.run('open', (d) => d);
    this.run('read schema version', (d) => {
      d.exec(SCHEMA_MIGRATIONS_TABLE_SQL);
    });
    const applied = this.appliedVersions(db);
    for (const migration of pendingMigrations(applied)) {
      try {
        const applyOnce = db.transaction(() => {
          // Another process may have applied it between our read and this lock.
          const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(migration.version);
          if (done !== undefined) return false;
          db.exec(migration.sql);
          migration.data?.(db);
          db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(
            migration.version,
            migration.name,
            Date.now(),
          );
          return true;
        });
        if (applyOnce.immediate()) {
          this.logger.info({ version: migration.version, migration: migration.name }, 'applied state schema migration');
        }
      } catch (cause) {
        throw new ExporterError(
          'STATE_MIGRATION_FAILED',
          `state schema migration ${migration.version} (${migration.name}) failed: ${messageOf(cause)}`,
          { cause, details: { path: this.path, version: migration.version } },
        );
      }
    }
  }

  /** The newest schema version recorded in the database (0 before the first migrate()). */
  async schemaVersion(): Promise<number> {
    return this.run('read schema version', (db) => {
      const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").get();
      if (table === undefined) return 0;
      return Math.max(0, ...this.appliedVersions(db));
    });
  }

  async ping(): Promise<void> {
    this.run('ping', (db) => db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const db = this.db;
    this.db = undefined;
    this.statements.clear();
    this.histogramRows.clear();
    if (db === undefined) return;
    try {
      db.close();
    } catch (cause) {
      throw this.wrap('close', cause);
    }
  }

  async replaceOrgStacks(org: string, stacks: readonly StackSummary[], nowMs: number): Promise<void> {
    this.run('replaceOrgStacks', (db) => {
      for (const s of stacks) checkOrg(org, s);
      const touched = new Map<string, StackRef>();
      const stamp = db.transaction((): number | undefined => {
        // A relisted stack keeps its cursor and first-seen time (its backfill window does not
        // move) but is synced again: its gauge facts were dropped while it was unlisted. An
        // unchanged row is not rewritten, so a cycle over 10,000 idle stacks writes nothing.
        const upsert = this.stmt(
          `INSERT INTO stacks (org, project, stack, last_update, resource_count, cursor_version, first_seen_ms, listed)
           VALUES (?, ?, ?, ?, ?, 0, ?, 1)
           ON CONFLICT (org, project, stack) DO UPDATE SET
             last_update = excluded.last_update, resource_count = excluded.resource_count,
             synced_last_update = CASE WHEN stacks.listed = 1 THEN stacks.synced_last_update END,
             listed = 1
           WHERE stacks.listed = 0 OR stacks.last_update IS NOT excluded.last_update
             OR stacks.resource_count IS NOT excluded.resource_count`,
        );
        // Rows actually changed: an unchanged stack list must not invalidate rendered scrapes.
        let changes = 0;
        const listed = new Set<string>();
        for (const s of stacks) {
          const changed = upsert.run(s.org, s.project, s.stack, s.lastUpdate ?? null, s.resourceCount ?? null, nowMs).changes;
          if (changed > 0) touched.set(stackKey(s), { org, project: s.project, stack: s.stack });
          changes += changed;
          listed.add(JSON.stringify([s.project, s.stack]));
        }
        // An unlisted stack is hidden, not deleted, and loses what feeds its gauges. Its
        // counters and the exported-update ledger stay, so it is never recounted.
        const shown = this.stmt('SELECT project, stack FROM stacks WHERE org = ? AND listed = 1').all(org) as {
          project: string;
          stack: string;
        }[];
        const hide = this.stmt('UPDATE stacks SET listed = 0 WHERE org = ? AND project = ? AND stack = ?');
        for (const row of shown) {
          if (!listed.has(JSON.stringify([row.project, row.stack]))) {
            changes += hide.run(org, row.project, row.stack).changes;
            touched.set(stackKey({ org, ...row }), { org, project: row.project, stack: row.stack });
          }
        }
        for (const table of ['in_progress', 'last_updates', 'last_success']) {
          const present = this.stmt(`SELECT DISTINCT project, stack FROM ${table} WHERE org = ?`).all(org) as {
            project: string;
            stack: string;
          }[];
          const remove = this.stmt(`DELETE FROM ${table} WHERE org = ? AND project = ? AND stack = ?`);
          for (const row of present) {
            if (!listed.has(JSON.stringify([row.project, row.stack]))) {
              changes += remove.run(org, row.project, row.stack).changes;
              touched.set(stackKey({ org, ...row }), { org, project: row.project, stack: row.stack });
            }
          }
        }
        return changes > 0 ? this.bumpMetricsStamp() : undefined;
      }).immediate();
      if (stamp !== undefined) this.changes.record(stamp, { series: [], stacks: [...touched.values()] });
    });
  }

  async listStacks(): Promise<StackRecord[]> {
    return this.run('listStacks', () =>
      (this.stmt('SELECT * FROM stacks WHERE listed = 1 ORDER BY org, project, stack').all() as SqliteStackRow[]).map(
        toStackRecord,
      ),
    );
  }

  async getStack(ref: StackRef): Promise<StackRecord | undefined> {
    return this.run('getStack', () => {
      const row = this.stmt('SELECT * FROM stacks WHERE org = ? AND project = ? AND stack = ? AND listed = 1').get(
        ref.org,
        ref.project,
        ref.stack,
      ) as SqliteStackRow | undefined;
      return row === undefined ? undefined : toStackRecord(row);
    });
  }

  async markStackSynced(ref: StackRef, lastUpdate: number | undefined): Promise<void> {
    this.run('markStackSynced', () => {
      this.stmt(
        'UPDATE stacks SET synced_last_update = ? WHERE org = ? AND project = ? AND stack = ? AND listed = 1',
      ).run(
        lastUpdate ?? null,
        ref.org,
        ref.project,
        ref.stack,
      );
    });
  }

  async advanceCursor(ref: StackRef, version: number): Promise<void> {
    this.run('advanceCursor', () => {
      checkCursorVersion(ref, version);
      this.stmt(
        `UPDATE stacks SET cursor_version = max(cursor_version, ?)
         WHERE org = ? AND project = ? AND stack = ? AND listed = 1`,
      ).run(version, ref.org, ref.project, ref.stack);
    });
  }

  async resetCursor(ref: StackRef): Promise<void> {
    this.run('resetCursor', () => {
      this.stmt(
        `UPDATE stacks SET cursor_version = 0, preview_cursor_version = NULL, preview_cursor_start = NULL
         WHERE org = ? AND project = ? AND stack = ? AND listed = 1`,
      ).run(ref.org, ref.project, ref.stack);
    });
  }

  async setPreviewCursor(ref: StackRef, cursor: PreviewCursor): Promise<void> {
    this.run('setPreviewCursor', () => {
      checkPreviewCursor(ref, cursor);
      this.stmt(
        `UPDATE stacks SET preview_cursor_version = ?, preview_cursor_start = ?
         WHERE org = ? AND project = ? AND stack = ? AND listed = 1`,
      ).run(cursor.version, cursor.startTime, ref.org, ref.project, ref.stack);
    });
  }

  async commitUpdate(commit: UpdateCommit): Promise<boolean> {
    return (await this.commitUpdates([commit]))[0] === true;
  }

  async commitUpdates(commits: readonly UpdateCommit[]): Promise<boolean[]> {
    return this.run('commitUpdates', (db) => {
      for (const commit of commits) checkCommit(commit);
      const touched: SeriesRef[] = [];
      let stacks: StackRef[] = [];
      const written: [name: string, key: string, totals: HistogramTotals][] = [];
      let stamp = 0;
      const apply = db.transaction((): boolean[] => {
        // The immediate transaction holds the write lock, so no other connection commits in between.
        const committed = commits.map((commit) => this.recordExported(commit));
        const added = commits.filter((_, i) => committed[i]);
        if (added.length === 0) return committed;
        const facts = stackCommitFacts(added);
        for (const f of facts) this.applyStackFacts(f);
        stacks = facts.map((f) => f.stack);
        const counters = new Map<string, { delta: CounterDelta; value: number }>();
        // One read and one write per histogram series, however many observations the
        // updates bring (each update observes one duration per resource step).
        const series = new Map<string, HistogramObservation[]>();
        for (const commit of added) {
          for (const delta of commit.deltas.counters) {
            checkCounterDelta(delta);
            const key = `${delta.name}\n${labelsKey(delta.labels)}`;
            const sum = counters.get(key);
            if (sum === undefined) counters.set(key, { delta, value: delta.value });
            else sum.value += delta.value;
          }
          for (const obs of commit.deltas.histograms) {
            checkObservation(obs);
            const key = `${obs.name}\n${labelsKey(obs.labels)}`;
            const list = series.get(key);
            if (list === undefined) series.set(key, [obs]);
            else list.push(obs);
          }
        }

        const addCounter = this.stmt(
          `INSERT INTO counters (name, labels_key, labels_json, value) VALUES (?, ?, ?, ?)
           ON CONFLICT (name, labels_key) DO UPDATE SET value = value + excluded.value`,
        );
        for (const { delta, value } of counters.values()) {
          addCounter.run(delta.name, labelsKey(delta.labels), labelsJson(delta.labels), value);
          touched.push(delta);
        }
        for (const observations of series.values()) {
          const first = observations[0] as HistogramObservation;
          touched.push(first);
          written.push([first.name, labelsKey(first.labels), this.addObservations(observations)]);
        }
        stamp = this.bumpMetricsStamp();
        return committed;
      });
      const committed = apply.immediate();
      if (stacks.length === 0) return committed;
      for (const [name, key, totals] of written) this.histogramRows.set(name, key, totals);
      this.changes.record(stamp, { series: touched, stacks });
      return committed;
    });
  }

  /**
   * The ledger row of one update, inside commitUpdates' transaction: false, writing nothing,
   * when the update is already in the ledger (under any stack of its org).
   */
  private recordExported(commit: UpdateCommit): boolean {
    const { update: u, exportedAtMs } = commit;
    const s = u.stack;
    if (this.stmt(EXPORTED_IN_ORG_SQL).get(s.org, u.updateId) !== undefined) return false;
    this.stmt(
      `INSERT INTO exported_updates
         (org, project, stack, update_id, kind, version, result, start_time, end_time, exported_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(s.org, s.project, s.stack, u.updateId, u.kind, u.version, u.result, u.startTime, u.endTime, exportedAtMs);
    return true;
  }

  /** One stack's cursor, last-update facts and in-progress/follow rows after its committed updates (see stackCommitFacts). */
  private applyStackFacts(facts: StackCommitFacts): void {
    const s = facts.stack;
    // A commit does not relist a stack the org list hides; it only moves its cursor
    // (max with 0 for previews: they never move it).
    const listed = this.stmt(
      `INSERT INTO stacks (org, project, stack, cursor_version, first_seen_ms, listed) VALUES (?, ?, ?, ?, ?, 1)
       ON CONFLICT (org, project, stack) DO UPDATE SET
         cursor_version = max(cursor_version, excluded.cursor_version)
       RETURNING listed`,
    )
      .pluck()
      .get(s.org, s.project, s.stack, facts.cursorVersion, facts.firstSeenMs) as number;

    // Commits can arrive out of order; ">=" keeps the gauges on the newest end time.
    // An unlisted stack has no gauges, so it gets no last-update facts either.
    if (listed === 1) {
      for (const u of facts.lastUpdates) {
        this.stmt(
          `INSERT INTO last_updates (org, project, stack, kind, result, end_time, duration_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (org, project, stack, kind) DO UPDATE SET
             result = excluded.result, end_time = excluded.end_time, duration_seconds = excluded.duration_seconds
           WHERE excluded.end_time >= last_updates.end_time`,
        ).run(s.org, s.project, s.stack, u.kind, u.result, u.endTime, Math.max(0, u.endTime - u.startTime));
      }
      if (facts.lastSuccessEndTime !== undefined) {
        this.stmt(
          `INSERT INTO last_success (org, project, stack, end_time) VALUES (?, ?, ?, ?)
           ON CONFLICT (org, project, stack) DO UPDATE SET end_time = excluded.end_time
           WHERE excluded.end_time >= last_success.end_time`,
        ).run(s.org, s.project, s.stack, facts.lastSuccessEndTime);
      }
    }

    const ids = JSON.stringify(facts.updateIds);
    this.stmt('DELETE FROM in_progress WHERE org = ? AND project = ? AND stack = ? AND update_id IN (SELECT value FROM json_each(?))').run(s.org, s.project, s.stack, ids);
    this.stmt('DELETE FROM follow_records WHERE org = ? AND project = ? AND stack = ? AND update_id IN (SELECT value FROM json_each(?))').run(s.org, s.project, s.stack, ids);
  }

  /**
   * Folds the observations of one histogram series into its row (inside commitUpdates'
   * transaction) and returns the row's new totals, which the row cache takes once the
   * transaction committed.
   */
  private addObservations(observations: readonly HistogramObservation[]): HistogramTotals {
    const first = observations[0] as HistogramObservation;
    const key = labelsKey(first.labels);
    const row = this.histogramRows.get(first.name, key) ?? this.readHistogramTotals(first.name, key);
    const stored = row === undefined ? first.buckets : row.buckets;
    // A copy: the cached row changes only once the transaction committed.
    const counts = row === undefined ? new Array<number>(stored.length + 1).fill(0) : [...row.counts];
    if (counts.length !== stored.length + 1) {
      throw new ExporterError('STATE_ERROR', `histogram ${first.name} has a corrupt bucket_counts row`);
    }
    // The latest exemplar per bucket: commits arrive roughly in end-time order.
    let exemplars: (Exemplar | null)[] | undefined;
    let sum = 0;
    for (const obs of observations) {
      if (!sameBuckets(stored, obs.buckets)) throw bucketMismatch(obs, stored);
      const slot = bucketIndex(obs.buckets, obs.value);
      counts[slot] = (counts[slot] as number) + 1;
      sum += obs.value;
      if (obs.exemplar !== undefined) {
        exemplars ??= row?.exemplarsJson ? parseExemplars(row.exemplarsJson) : [];
        while (exemplars.length < obs.buckets.length + 1) exemplars.push(null);
        exemplars[slot] = { traceId: obs.exemplar.traceId, value: obs.value, timestamp: obs.exemplar.timestamp };
      }
    }
    const exemplarsJson = exemplars === undefined ? (row?.exemplarsJson ?? null) : JSON.stringify(exemplars);
    if (row === undefined) {
      this.stmt(
        `INSERT INTO histograms (name, labels_key, labels_json, buckets_json, bucket_counts_json, sum, count, exemplars_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(first.name, key, labelsJson(first.labels), JSON.stringify(first.buckets), JSON.stringify(counts), sum, observations.length, exemplarsJson);
    } else {
      this.stmt(
        `UPDATE histograms SET bucket_counts_json = ?, sum = sum + ?, count = count + ?, exemplars_json = ?
         WHERE name = ? AND labels_key = ?`,
      ).run(JSON.stringify(counts), sum, observations.length, exemplarsJson, first.name, key);
    }
    return { buckets: stored, counts, exemplarsJson };
  }

  async isExported(ref: StackRef, updateId: string): Promise<boolean> {
    return this.run('isExported', () => {
      return this.stmt(EXPORTED_IN_ORG_SQL).get(ref.org, updateId) !== undefined;
    });
  }

  async countExported(ref?: StackRef): Promise<number> {
    return this.run('countExported', () => {
      if (ref === undefined) return this.stmt('SELECT count(*) FROM exported_updates').pluck().get() as number;
      return this.stmt('SELECT count(*) FROM exported_updates WHERE org = ? AND project = ? AND stack = ?')
        .pluck()
        .get(ref.org, ref.project, ref.stack) as number;
    });
  }

  async listRecentUpdates(limit: number): Promise<ExportedUpdate[]> {
    return this.run('listRecentUpdates', () =>
      (this.stmt(`${RECENT_UPDATES_SQL} LIMIT ?`).all(Math.max(0, Math.floor(limit))) as ExportedUpdateRow[]).map(toExportedUpdate),
    );
  }

  async readFollow(ref: StackRef, updateId: string): Promise<FollowRecord | undefined> {
    return this.run('readFollow', () => {
      const row = this.stmt(
        'SELECT events_read, continuation_token, sent_span_ids FROM follow_records WHERE org = ? AND project = ? AND stack = ? AND update_id = ?',
      ).get(ref.org, ref.project, ref.stack, updateId) as FollowRow | undefined;
      return row === undefined ? undefined : toFollowRecord(ref, updateId, row);
    });
  }

  async recordFollow(record: FollowRecord): Promise<void> {
    this.run('recordFollow', (db) => {
      checkFollowRecord(record);
      const { stack: s, updateId } = record;
      db.transaction(() => {
        const stored = this.stmt('SELECT sent_span_ids FROM follow_records WHERE org = ? AND project = ? AND stack = ? AND update_id = ?')
          .pluck()
          .get(s.org, s.project, s.stack, updateId) as string | undefined;
        const sent = mergeSpanIds(stored === undefined ? [] : parseSpanIds(stored), record.sentSpanIds);
        this.stmt(
          `INSERT INTO follow_records (org, project, stack, update_id, events_read, continuation_token, sent_span_ids)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (org, project, stack, update_id) DO UPDATE SET
             events_read = excluded.events_read, continuation_token = excluded.continuation_token,
             sent_span_ids = excluded.sent_span_ids`,
        ).run(s.org, s.project, s.stack, updateId, record.eventsRead, record.continuationToken, JSON.stringify(sent));
      }).immediate();
    });
  }

  async setInProgress(ref: StackRef, updates: readonly InProgressRecord[]): Promise<void> {
    this.run('setInProgress', (db) => {
      for (const u of updates) checkSameStack(ref, u.stack, `in-progress update ${u.updateId}`);
      const stamp = db.transaction((): number | undefined => {
        // Every sync sets the running set; only a different one may invalidate rendered scrapes.
        const before = this.stmt(RUNNING_SET_SQL(() => '?')).all(ref.org, ref.project, ref.stack) as RunningSetRow[];
        if (JSON.stringify(before) === JSON.stringify(runningSetRows(updates))) return undefined;
        const moved = this.bumpMetricsStamp();
        this.stmt('DELETE FROM in_progress WHERE org = ? AND project = ? AND stack = ?').run(
          ref.org,
          ref.project,
          ref.stack,
        );
        const insert = this.stmt(
          `INSERT OR REPLACE INTO in_progress (org, project, stack, update_id, kind, version, start_time)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        );
        for (const u of updates) {
          insert.run(ref.org, ref.project, ref.stack, u.updateId, u.kind, u.version, u.startTime);
        }
        return moved;
      }).immediate();
      if (stamp !== undefined) this.changes.record(stamp, { series: [], stacks: [ref] });
    });
  }

  async listInProgress(): Promise<InProgressRecord[]> {
    return this.run('listInProgress', () => (this.stmt(IN_PROGRESS_SQL).all() as InProgressRow[]).map(toInProgressRecord));
  }

  async readMetricsStamp(): Promise<number> {
    return this.run('readMetricsStamp', () => this.stmt('SELECT stamp FROM metrics_stamp WHERE id = 1').pluck().get() as number);
  }

  async readMetricsStartMs(): Promise<number> {
    return this.run('readMetricsStartMs', () => this.stmt('SELECT min(applied_at_ms) FROM schema_migrations').pluck().get() as number);
  }

  async readCounters(): Promise<CounterRow[]> {
    return this.run('readCounters', () =>
      (this.stmt('SELECT name, labels_json, value FROM counters ORDER BY name, labels_key').all() as CounterDbRow[]).map(toCounterRow),
    );
  }

  async readHistograms(): Promise<HistogramRow[]> {
    const toRow = histogramRowMapper();
    return this.run('readHistograms', () =>
      (this.stmt('SELECT * FROM histograms ORDER BY name, labels_key').all() as HistogramDbRow[]).map(toRow),
    );
  }

  async readLastUpdates(): Promise<LastUpdateRow[]> {
    return this.run('readLastUpdates', () =>
      (this.stmt('SELECT * FROM last_updates ORDER BY org, project, stack, kind').all() as LastUpdateDbRow[]).map(toLastUpdateRow),
    );
  }

  async readLastSuccesses(): Promise<LastSuccessRow[]> {
    return this.run('readLastSuccesses', () =>
      (this.stmt('SELECT * FROM last_success ORDER BY org, project, stack').all() as LastSuccessDbRow[]).map(toLastSuccessRow),
    );
  }

  async readMetricsChanges(since: number): Promise<MetricsChangeRows | undefined> {
    // Synchronous from the stamp to the last row: no write can come in between.
    return this.run('readMetricsChanges', () => {
      const stamp = this.stmt('SELECT stamp FROM metrics_stamp WHERE id = 1').pluck().get() as number;
      const changes = this.changes.since(since, stamp);
      if (changes === undefined) return undefined;
      const counter = this.stmt('SELECT name, labels_json, value FROM counters WHERE name = ? AND labels_key = ?');
      const histogram = this.stmt('SELECT * FROM histograms WHERE name = ? AND labels_key = ?');
      const toHistogram = histogramRowMapper();
      const counters: CounterRow[] = [];
      const histograms: HistogramRow[] = [];
      for (const ref of changes.series) {
        const key = labelsKey(ref.labels);
        const c = counter.get(ref.name, key) as CounterDbRow | undefined;
        if (c !== undefined) counters.push(toCounterRow(c));
        const h = histogram.get(ref.name, key) as HistogramDbRow | undefined;
        if (h !== undefined) histograms.push(toHistogram(h));
      }
      const where = 'WHERE org = ? AND project = ? AND stack = ?';
      const stacks: StackRecord[] = [];
      const lastUpdates: LastUpdateRow[] = [];
      const lastSuccesses: LastSuccessRow[] = [];
      const inProgress: InProgressRecord[] = [];
      for (const ref of changes.stacks) {
        const at = [ref.org, ref.project, ref.stack];
        const row = this.stmt(`SELECT * FROM stacks ${where} AND listed = 1`).get(...at) as SqliteStackRow | undefined;
        if (row !== undefined) stacks.push(toStackRecord(row));
        for (const r of this.stmt(`SELECT * FROM last_updates ${where} ORDER BY kind`).all(...at) as LastUpdateDbRow[]) {
          lastUpdates.push(toLastUpdateRow(r));
        }
        for (const r of this.stmt(`SELECT * FROM last_success ${where}`).all(...at) as LastSuccessDbRow[]) {
          lastSuccesses.push(toLastSuccessRow(r));
        }
        for (const r of this.stmt(`SELECT * FROM in_progress ${where} ORDER BY version, update_id`).all(...at) as InProgressRow[]) {
          inProgress.push(toInProgressRecord(r));
        }
      }
      return { stamp, changes, counters, histograms, stacks, lastUpdates, lastSuccesses, inProgress };
    });
  }

  /** A stored histogram row as commitUpdate folds into it; undefined when there is none yet. */
  private readHistogramTotals(name: string, key: string): HistogramTotals | undefined {
    const row = this.stmt('SELECT buckets_json, bucket_counts_json, exemplars_json FROM histograms WHERE name = ? AND labels_key = ?').get(name, key) as
      | Pick<HistogramDbRow, 'buckets_json' | 'bucket_counts_json' | 'exemplars_json'>
      | undefined;
    if (row === undefined) return undefined;
    return { buckets: parseNumbers(row.buckets_json), counts: parseNumbers(row.bucket_counts_json), exemplarsJson: row.exemplars_json };
  }

  /** Moves the metrics stamp (inside the caller's transaction); returns the new stamp. */
  private bumpMetricsStamp(): number {
    return this.stmt(BUMP_METRICS_STAMP_SQL).pluck().get() as number;
  }

  /** Runs `fn` on the open connection; anything it throws leaves as a coded ExporterError. */
  private run<T>(operation: string, fn: (db: Db) => T): T {
    try {
      return fn(this.connection());
    } catch (err) {
      throw this.wrap(operation, err);
    }
  }

  private wrap(operation: string, err: unknown): ExporterError {
    if (isExporterError(err)) return err;
    return new ExporterError('STATE_ERROR', `state store ${operation} failed: ${messageOf(err)}`, {
      cause: err,
      retryable: true,
      details: { path: this.path, operation },
    });
  }

  private connection(): Db {
    if (this.closed) {
      throw new ExporterError('STATE_ERROR', 'state store is closed', { details: { path: this.path } });
    }
    if (this.db !== undefined) return this.db;
    const memory = this.path === MEMORY_PATH;
    let db: Db | undefined;
    try {
      if (!memory) ensureDirectory(dirname(resolve(this.path)));
      db = new Database(this.path, { timeout: this.busyTimeoutMillis });
      if (!memory) {
        this.lockExclusively(db);
        // WAL lets scrapes read while a sync writes. NORMAL syncs the WAL only at checkpoints,
        // not on every commit: the database stays consistent after a crash of the process or
        // of the machine, and a power cut can only roll back the last commits, whose updates
        // are then exported again under the same deterministic trace and span ids and counted
        // once (the metrics roll back with them). FULL cost one fsync per exported update.
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal') this.logger.warn({ path: this.path, mode }, 'SQLite refused WAL mode; continuing');
        db.pragma(`synchronous = ${mode === 'wal' ? 'NORMAL' : 'FULL'}`);
      }
      // Reading the schema fails here, not later, when the file is not a SQLite database.
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
    } catch (cause) {
      db?.close();
      if (isExporterError(cause)) throw cause;
      throw new ExporterError('STATE_ERROR', `cannot open state database ${this.path}: ${messageOf(cause)}`, {
        cause,
        details: { path: this.path },
      });
    }
    this.logger.debug({ path: this.path, knownSchemaVersion: SQLITE_SCHEMA_VERSION }, 'opened state database');
    this.db = db;
    return db;
  }

  /**
   * One process per state file: two exporters on one file would both export (and resend
   * spans). EXCLUSIVE locking mode keeps SQLite's own file lock from the first transaction
   * until close(); the operating system drops it when a process dies, so a crash never
   * leaves the file locked. Set before WAL mode, the WAL index lives in this process's
   * memory and no other connection can read or write the file at all. A file that is
   * already locked is refused at once with STATE_LOCKED (no waiting).
   */
  private lockExclusively(db: Db): void {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('busy_timeout = 0');
    try {
      db.exec('BEGIN EXCLUSIVE; COMMIT');
    } catch (cause) {
      if ((cause as { code?: unknown }).code !== 'SQLITE_BUSY') throw cause;
      throw new ExporterError(
        'STATE_LOCKED',
        `state file ${this.path} is in use by another process; only one exporter may use a SQLite state file ` +
          '(stop the other `run` or `once`, or give this one its own EXPORTER_STATE)',
        { cause, details: { path: this.path } },
      );
    }
    db.pragma(`busy_timeout = ${this.busyTimeoutMillis}`);
  }

  private appliedVersions(db: Db): number[] {
    return this.run('read schema version', () =>
      db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[],
    );
  }

  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.connection().prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

interface FollowRow {
  events_read: number;
  continuation_token: string | null;
  sent_span_ids: string;
}

function toFollowRecord(stack: StackRef, updateId: string, row: FollowRow): FollowRecord {
  return { stack, updateId, eventsRead: row.events_read, continuationToken: row.continuation_token, sentSpanIds: parseSpanIds(row.sent_span_ids) };
}

function parseSpanIds(json: string): string[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((id) => typeof id === 'string')) {
    throw new ExporterError('STATE_ERROR', `state database holds a malformed span id list: ${json.slice(0, 80)}`);
  }
  return value as string[];
}

interface CounterDbRow {
  name: string;
  labels_json: string;
  value: number;
}

function toCounterRow(r: CounterDbRow): CounterRow {
  return { name: r.name, labels: parseLabels(r.labels_json), value: r.value };
}

/** Every series of a metric has the same bounds: a mapper parses each distinct list once. */
function histogramRowMapper(): (r: HistogramDbRow) => HistogramRow {
  const bounds = new Map<string, number[]>();
  const boundsOf = (json: string): number[] => {
    let parsed = bounds.get(json);
    if (parsed === undefined) bounds.set(json, (parsed = parseNumbers(json)));
    return parsed;
  };
  return (r) => ({
    name: r.name,
    labels: parseLabels(r.labels_json),
    buckets: boundsOf(r.buckets_json),
    bucketCounts: parseNumbers(r.bucket_counts_json),
    sum: r.sum,
    count: r.count,
    ...(r.exemplars_json === null ? {} : { exemplars: parseExemplars(r.exemplars_json) }),
  });
}

function labelsJson(labels: Labels): string {
  return JSON.stringify(canonicalLabels(labels));
}

function parseLabels(json: string): Labels {
  return JSON.parse(json) as Labels;
}

function parseNumbers(json: string): number[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((n) => typeof n === 'number')) {
    throw new ExporterError('STATE_ERROR', `state database holds a malformed number list: ${json.slice(0, 80)}`);
  }
  return value as number[];
}


function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates a directory and its missing parents one level at a time. Node's recursive
 * mkdirSync never returns for a path under /proc (it keeps retrying ENOENT), so the
 * exporter would hang at start-up instead of reporting a bad EXPORTER_STATE.
 */
function ensureDirectory(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    return;
  }
  const parent = dirname(dir);
  if (parent === dir) throw new Error(`cannot create ${dir}`);
  ensureDirectory(parent);
  mkdirSync(dir);
}
