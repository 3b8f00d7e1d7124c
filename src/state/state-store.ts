import type { Exemplar, Labels, MetricDeltas } from '../domain/metric-delta.js';
import type { StackRef, StackSummary } from '../domain/stack.js';
import type { MetricsChanges } from './metrics-change-log.js';

/**
 * Where a stack's preview listing resumes (previews are not in the update history; shared
 * pulumi-api.md 2.5 lists them per stack version). Previews of versions below `version`
 * are all done, and so are the previews of `version` that started before `startTime`.
 */
export interface PreviewCursor {
  readonly version: number;
  /** Unix seconds. */
  readonly startTime: number;
}

/** What the store knows about one watched stack. */
export interface StackRecord extends StackSummary {
  /** Newest stack version whose update was exported (0 = none yet). */
  readonly cursorVersion: number;
  /** Absent until previews of the stack were first listed (previews.enabled). */
  readonly previewCursor?: PreviewCursor;
  /** The stack list's `lastUpdate` as of the last *successful* sync of this stack. */
  readonly syncedLastUpdate?: number;
  /** Unix ms when the exporter first saw the stack. */
  readonly firstSeenMs: number;
}

/** An update seen running; revisited every cycle until terminal. */
export interface InProgressRecord {
  readonly stack: StackRef;
  readonly updateId: string;
  readonly kind: string;
  readonly version: number;
  /** Unix seconds. */
  readonly startTime: number;
}

/**
 * How far a running update has been followed (src/sync/follow-update.ts): what was read of
 * its event stream and which of its step spans were sent before it ended.
 */
export interface FollowRecord {
  readonly stack: StackRef;
  readonly updateId: string;
  /** Engine events read so far. */
  readonly eventsRead: number;
  /** The events API's continuation token after them (null once the stream ended). */
  readonly continuationToken: string | null;
  /** Step span ids already sent. */
  readonly sentSpanIds: readonly string[];
}

/** The terminal facts of one update, written when it is exported. */
export interface ExportedUpdate {
  readonly stack: StackRef;
  readonly updateId: string;
  readonly kind: string;
  readonly version: number;
  /** succeeded | failed | cancelled */
  readonly result: string;
  /** Unix seconds. */
  readonly startTime: number;
  /** Unix seconds. */
  readonly endTime: number;
}

export interface UpdateCommit {
  readonly update: ExportedUpdate;
  readonly deltas: MetricDeltas;
  /** Unix ms of the commit; recorded for auditing. */
  readonly exportedAtMs: number;
  /**
   * Set when several replicas share the store (see coordinator.ts): the commit happens only
   * while this owner holds the stack's lease, else it rejects with STATE_LEASE_LOST and
   * changes nothing. Stores that only ever have one writer (SQLite) ignore it.
   */
  readonly leaseOwner?: string;
}

export interface CounterRow {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramRow {
  readonly name: string;
  readonly labels: Labels;
  /** Finite upper bounds, ascending. */
  readonly buckets: readonly number[];
  /** Non-cumulative count per finite bucket, then one more for +Inf. */
  readonly bucketCounts: readonly number[];
  readonly sum: number;
  readonly count: number;
  /** Latest exemplar per bucket slot (same indexes as bucketCounts); missing or null = none. */
  readonly exemplars?: readonly (Exemplar | null)[];
}

/** Newest terminal update of one kind for one stack (feeds the last-update gauges). */
export interface LastUpdateRow {
  readonly stack: StackRef;
  readonly kind: string;
  readonly result: string;
  /** Unix seconds. */
  readonly endTime: number;
  /** endTime - startTime (>= 0) of that update; absent when the store cannot tell. */
  readonly durationSeconds?: number;
}

export interface LastSuccessRow {
  readonly stack: StackRef;
  /** Unix seconds: end time of the newest succeeded update of any kind. */
  readonly endTime: number;
}

/**
 * Durable state. Every implementation passes test/unit/state/state-store-contract.ts.
 * All methods may reject with ExporterError('STATE_ERROR').
 */
export interface StateStore {
  /** Creates or upgrades the schema; idempotent. */
  migrate(): Promise<void>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;

  /**
   * Records the complete stack list of one org: inserts new stacks, refreshes
   * lastUpdate/resourceCount of known ones, and forgets stacks of that org that are no
   * longer listed: they leave listStacks/getStack and their gauge facts (in-progress,
   * last update, last success) are deleted, but their counters, exported updates, cursor
   * and firstSeenMs are kept, so a stack that is listed again resumes where it was (its
   * backfill window does not move) and is synced again (syncedLastUpdate cleared).
   */
  replaceOrgStacks(org: string, stacks: readonly StackSummary[], nowMs: number): Promise<void>;
  listStacks(): Promise<StackRecord[]>;
  getStack(ref: StackRef): Promise<StackRecord | undefined>;
  /** After a successful sync of the stack: remember which lastUpdate it covered. */
  markStackSynced(ref: StackRef, lastUpdate: number | undefined): Promise<void>;
  /** Raises the stack's cursor to `version` if it is lower (updates found already exported). No-op for an unknown stack. */
  advanceCursor(ref: StackRef, version: number): Promise<void>;
  /**
   * Sets the stack's cursor back to 0 (its history no longer holds the exported update at
   * the cursor: the stack was deleted and created again) and clears its preview cursor
   * (the versions it names are gone too). The exported-update ledger and the counters are
   * kept, so nothing is counted twice. No-op for an unknown stack.
   */
  resetCursor(ref: StackRef): Promise<void>;
  /** Sets the stack's preview cursor (it may move back: a running preview holds it). No-op for an unknown stack. */
  setPreviewCursor(ref: StackRef, cursor: PreviewCursor): Promise<void>;

  /**
   * In one transaction: records the update as exported (idempotent on updateId within the
   * org: Pulumi keeps update ids when a stack is renamed, so an id already exported under
   * another stack name of the same org is not counted again),
   * raises the stack cursor to its version, applies the metric deltas, updates the
   * last-update facts and removes it from the in-progress set and its follow record. A
   * preview (isPreviewKind) neither raises the cursor (its version is one the history
   * already has) nor moves the last successful update: only its own last-update facts,
   * under its kind.
   * Returns false, changing nothing, when the update was already exported.
   */
  commitUpdate(commit: UpdateCommit): Promise<boolean>;
  /**
   * commitUpdate for several updates in one transaction (all or none), in order: an update
   * already exported, or twice in the list, changes nothing and gets false at its index. The
   * metric deltas of the updates are added up per series first, so a series the updates
   * share is written once.
   */
  commitUpdates(commits: readonly UpdateCommit[]): Promise<boolean[]>;
  /** True when updateId was exported under any stack of ref's org (see commitUpdate). */
  isExported(ref: StackRef, updateId: string): Promise<boolean>;
  /** Number of exported updates (optionally of one stack). */
  countExported(ref?: StackRef): Promise<number>;
  /** The most recently ended exported updates, newest end time first (ties: newest version first), at most `limit`. */
  listRecentUpdates(limit: number): Promise<ExportedUpdate[]>;

  /** The follow record of an update; undefined when it was never followed or has been committed. */
  readFollow(ref: StackRef, updateId: string): Promise<FollowRecord | undefined>;
  /**
   * Records how far a running update was followed, after its spans were sent: the position
   * (events read, token) is replaced and the span ids are added to those stored, a set that
   * never shrinks, so a replica that recorded late cannot make another resend spans.
   * commitUpdate deletes the record in its transaction.
   */
  recordFollow(record: FollowRecord): Promise<void>;

  /** Replaces the in-progress set of one stack. */
  setInProgress(ref: StackRef, updates: readonly InProgressRecord[]): Promise<void>;
  listInProgress(): Promise<InProgressRecord[]>;

  /**
   * A number that changes (grows) in the same transaction as every write that changes what
   * the read* methods, listStacks or listInProgress return. A scrape that reads it before
   * those reads may reuse what it rendered for the same stamp.
   */
  readMetricsStamp(): Promise<number>;
  /**
   * Unix ms since which the stored counters and histograms accumulate: when the store was
   * created (its first migration). Never changes, so pushed cumulative metrics keep their
   * start time across restarts and replicas.
   */
  readMetricsStartMs(): Promise<number>;
  readCounters(): Promise<CounterRow[]>;
  readHistograms(): Promise<HistogramRow[]>;
  readLastUpdates(): Promise<LastUpdateRow[]>;
  readLastSuccesses(): Promise<LastSuccessRow[]>;
  /**
   * Optional: what changed after metrics stamp `since`, with the current rows of just those
   * series and stacks, as of the stamp it returns; undefined when this store cannot tell
   * (a write it did not see moved the stamp). A scrape then reads everything.
   */
  readMetricsChanges?(since: number): Promise<MetricsChangeRows | undefined>;
}

/** See StateStore.readMetricsChanges. */
export interface MetricsChangeRows {
  /** The metrics stamp these rows are as of. */
  readonly stamp: number;
  readonly changes: MetricsChanges;
  /** The rows of the changed series that exist. */
  readonly counters: readonly CounterRow[];
  readonly histograms: readonly HistogramRow[];
  /** Of the changed stacks: those listed, and their facts. */
  readonly stacks: readonly StackRecord[];
  readonly lastUpdates: readonly LastUpdateRow[];
  readonly lastSuccesses: readonly LastSuccessRow[];
  readonly inProgress: readonly InProgressRecord[];
}
