import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metric, RegistryContentType } from 'prom-client';
import { ENGINE_EVENT_WIRE_TYPES } from '../domain/engine-event.js';
import { ERROR_CODES, errorCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { ApiEndpoint, ApiObserver, ApiResponseCode, RetryReason } from '../pulumi/api-observer.js';
import type { StateStore } from '../state/state-store.js';
import type { SinkObserver } from '../tracing/span-sink.js';
import { WEBHOOK_KINDS, WEBHOOK_OUTCOMES, WEBHOOK_SYNC_RESULTS, type WebhookMetrics, type WebhookOutcome, type WebhookSyncResult } from './webhook-metrics.js';
import type { MetricDefinition } from './definitions.js';
import { METRIC_DEFINITIONS, METRICS } from './definitions.js';
import { negotiateFormat, type ExpositionFormat } from './negotiate-format.js';
import { StoreExposition, type ExpositionPiece } from './store-exposition.js';
import type { StoreSnapshot } from './store-samples.js';
import { readStoreSnapshot, storeSeries } from './store-samples.js';

const gzipAsync = promisify(gzip);

export interface ExporterMetricsOptions {
  readonly store: StateStore;
  readonly version: string;
  readonly revision: string;
}

export interface RenderedMetrics {
  readonly contentType: string;
  readonly body: string;
  /** The body as UTF-8 bytes, in runs to send in order (the kept chunks of the store part, then the self-metrics). */
  parts(): readonly Buffer[];
  readonly byteLength: number;
  /**
   * The body gzip-compressed: gzip members to send in order (the store-backed part in chunks,
   * each compressed once per change of its series, then the self-metrics), which gzip readers
   * read as one stream (RFC 1952 2.2).
   */
  gzipParts(): Promise<readonly Buffer[]>;
}

const STORE_DEFINITIONS = METRIC_DEFINITIONS.filter((d) => d.source !== 'process');
const SELF_DEFINITIONS = METRIC_DEFINITIONS.filter((d) => d.source === 'process');

export interface LastPoll {
  readonly result: 'success' | 'failure';
  /** ISO 8601. */
  readonly finishedAt: string;
  readonly durationSeconds: number;
}

const API_ENDPOINTS: ReadonlySet<string> = new Set<ApiEndpoint>([
  'listStacks',
  'listUpdates',
  'engineEvents',
  'latestPreviews',
  'versionPreviews',
  'updateStatus',
]);
const API_ERROR_CLASSES: ReadonlySet<string> = new Set(['timeout', 'network', 'malformed']);
const RETRY_REASONS: ReadonlySet<string> = new Set<RetryReason>(['429', '5xx', 'network', 'timeout']);
const ENGINE_EVENT_TYPES: ReadonlySet<string> = new Set<string>([...ENGINE_EVENT_WIRE_TYPES, 'unknown']);
/** A bounded word: no spaces, colons or slashes, so a message or URN can never become a label. */
const WORD = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * The exporter's Prometheus metrics.
 *
 * - pulumi_* counters and histograms are read from the StateStore at every scrape, so they
 *   continue from the stored totals after a restart and every replica sharing the store
 *   serves the same values. pulumi_stack_* gauges are computed from the store's stack facts
 *   at scrape time, so a forgotten stack's series disappear.
 * - pulumi_exporter_* self-metrics live in this process (a non-global prom-client Registry)
 *   and reset on restart, which Prometheus' rate() handles as a counter reset.
 *
 * The store-backed text is rendered again only when the store's metrics stamp moved: the
 * stamp is read before the rows, and every store write a scrape could see moves it in the
 * same transaction, so a reused text is never older than the store at the start of the scrape.
 *
 * A failed store read fails the whole scrape (render() rejects with the store's error, and
 * pulumi_exporter_errors_total{code} counts it): a partial exposition would silently drop
 * every pulumi_* series. storeReadFailure() tells readiness that the store cannot be read.
 *
 * With several replicas only the leader serves the store-backed pulumi_* series; a follower
 * serves pulumi_exporter_* alone.
 *
 * Every label value taken from a caller is checked against a fixed set or a short-word
 * pattern (anything else becomes `other`/`unknown`), so labels stay bounded.
 */
export class ExporterMetrics implements ApiObserver, SinkObserver, WebhookMetrics {
  /** Holds the self-metrics; never the global registry. */
  readonly registry: Registry<RegistryContentType> = new Registry<RegistryContentType>();

  private readonly store: StateStore;
  private lastStoreFailure: unknown;
  private readonly selfMetrics = new Map<string, Metric>();
  private last: LastPoll | undefined;
  /** Only the leader serves the store-backed pulumi_* series (one replica of several). */
  private leading = true;
  /** The store-backed families as of `expositionStamp` (see StateStore.readMetricsStamp). */
  private readonly exposition = new StoreExposition(STORE_DEFINITIONS);
  /** Undefined until a full read succeeded, and after a failed read: the next scrape reads everything. */
  private expositionStamp: number | undefined;
  /** Store reads for the exposition, one at a time, so they are applied in the order they were read. */
  private refreshing: Promise<unknown> = Promise.resolve();

  private readonly apiRequests: Counter<'endpoint' | 'code'>;
  private readonly apiRequestDuration: Histogram<'endpoint'>;
  private readonly apiRetries: Counter<'endpoint' | 'reason'>;
  private readonly pollDuration: Gauge;
  private readonly polls: Counter<'result'>;
  private readonly lastSuccessfulPoll: Gauge;
  private readonly stacksWatched: Gauge<'org'>;
  private readonly backlog: Gauge;
  private readonly backfillStacksPending: Gauge;
  private readonly updatesExported: Counter<'kind'>;
  private readonly engineEventsRead: Counter<'type'>;
  private readonly spans: Counter;
  private readonly spansFollowedCount: Counter;
  private readonly spanFailures: Counter<'reason'>;
  private readonly exportDelay: Histogram;
  private readonly errors: Counter<'code'>;
  private readonly leader: Gauge;
  private readonly webhookDeliveries: Counter<'kind' | 'outcome'>;
  private readonly webhookSyncs: Counter<'result'>;

  constructor(options: ExporterMetricsOptions) {
    this.store = options.store;
    const registers = [this.registry];
    const counter = <L extends string>(def: MetricDefinition): Counter<L> =>
      this.own(def, new Counter<L>({ name: def.name, help: def.help, labelNames: def.labelNames as L[], registers }));
    const gauge = <L extends string>(def: MetricDefinition): Gauge<L> =>
      this.own(def, new Gauge<L>({ name: def.name, help: def.help, labelNames: def.labelNames as L[], registers }));
    const histogram = <L extends string>(def: MetricDefinition): Histogram<L> =>
      this.own(
        def,
        new Histogram<L>({
          name: def.name,
          help: def.help,
          labelNames: def.labelNames as L[],
          buckets: [...(def.buckets ?? [])],
          registers,
        }),
      );

    gauge<'version' | 'revision' | 'nodejs_version'>(METRICS.buildInfo).set(
      { version: options.version, revision: options.revision, nodejs_version: process.versions.node },
      1,
    );
    this.apiRequests = counter(METRICS.apiRequestsTotal);
    this.apiRequestDuration = histogram(METRICS.apiRequestDurationSeconds);
    this.apiRetries = counter(METRICS.apiRetriesTotal);
    this.pollDuration = gauge(METRICS.pollDurationSeconds);
    this.polls = counter(METRICS.pollsTotal);
    this.lastSuccessfulPoll = gauge(METRICS.lastSuccessfulPollTimestampSeconds);
    this.stacksWatched = gauge(METRICS.stacksWatched);
    this.backlog = gauge(METRICS.backlogUpdates);
    this.backfillStacksPending = gauge(METRICS.backfillStacksPending);
    this.updatesExported = counter(METRICS.updatesExportedTotal);
    this.engineEventsRead = counter(METRICS.engineEventsTotal);
    this.spans = counter(METRICS.spansExportedTotal);
    this.spansFollowedCount = counter(METRICS.spansFollowedTotal);
    this.spanFailures = counter(METRICS.spanExportFailuresTotal);
    this.exportDelay = histogram(METRICS.exportDelaySeconds);
    this.errors = counter(METRICS.errorsTotal);
    this.leader = gauge(METRICS.leader);
    this.webhookDeliveries = counter(METRICS.webhookDeliveriesTotal);
    this.webhookSyncs = counter(METRICS.webhookSyncsTotal);

    // Known label values start at 0 so rate() and increase() see the first increment.
    for (const result of ['success', 'failure'] as const) this.polls.inc({ result }, 0);
    for (const code of Object.keys(ERROR_CODES)) this.errors.inc({ code }, 0);
    for (const outcome of WEBHOOK_OUTCOMES) this.webhookDeliveries.inc({ kind: 'stack_update', outcome }, 0);
    for (const result of WEBHOOK_SYNC_RESULTS) this.webhookSyncs.inc({ result }, 0);
  }

  // WebhookMetrics

  /** One webhook delivery and what became of it; kinds outside the known set count as `other`. */
  webhookDelivery(kind: string, outcome: WebhookOutcome): void {
    this.webhookDeliveries.inc({ kind: WEBHOOK_KINDS.has(kind) ? kind : 'other', outcome: WEBHOOK_OUTCOMES.includes(outcome) ? outcome : 'malformed' });
  }

  /** What became of a sync a delivery asked for. */
  webhookSync(result: WebhookSyncResult): void {
    this.webhookSyncs.inc({ result: WEBHOOK_SYNC_RESULTS.includes(result) ? result : 'failed' });
  }

  // ApiObserver

  request(endpoint: ApiEndpoint, code: ApiResponseCode, durationSeconds: number): void {
    const ep = boundedEndpoint(endpoint);
    this.apiRequests.inc({ endpoint: ep, code: /^[1-5]\d\d$/.test(code) || API_ERROR_CLASSES.has(code) ? code : 'other' });
    if (Number.isFinite(durationSeconds)) this.apiRequestDuration.observe({ endpoint: ep }, Math.max(0, durationSeconds));
  }

  retry(endpoint: ApiEndpoint, reason: RetryReason): void {
    this.apiRetries.inc({ endpoint: boundedEndpoint(endpoint), reason: RETRY_REASONS.has(reason) ? reason : 'other' });
  }

  // SinkObserver

  spansExported(count: number): void {
    if (Number.isFinite(count) && count > 0) this.spans.inc(count);
  }

  /** Step spans of a running update sent before it ended (counted in spansExported too). */
  spansFollowed(count: number): void {
    if (Number.isFinite(count) && count > 0) this.spansFollowedCount.inc(count);
  }

  exportFailed(reason: string): void {
    this.spanFailures.inc({ reason: WORD.test(reason) ? reason : 'other' });
  }

  // Scheduler and sync hooks

  /** After every full poll cycle. */
  pollFinished(result: 'success' | 'failure', durationSeconds: number, nowMs: number): void {
    this.polls.inc({ result });
    if (Number.isFinite(durationSeconds)) this.pollDuration.set(Math.max(0, durationSeconds));
    if (result === 'success') this.lastSuccessfulPoll.set(nowMs / 1000);
    this.last = { result, finishedAt: new Date(nowMs).toISOString(), durationSeconds };
  }

  /** The last poll cycle, for the landing page; undefined before the first one. */
  lastPoll(): LastPoll | undefined {
    return this.last;
  }

  /** After an org's stack list was read and filtered. */
  setStacksWatched(org: string, count: number): void {
    if (Number.isFinite(count)) this.stacksWatched.set({ org }, Math.max(0, count));
  }

  setBacklog(updates: number): void {
    if (Number.isFinite(updates)) this.backlog.set(Math.max(0, updates));
  }

  /** Stacks whose history the running cycle has not read yet (see BackfillProgress). */
  setBackfillStacksPending(stacks: number): void {
    if (Number.isFinite(stacks)) this.backfillStacksPending.set(Math.max(0, stacks));
  }

  /** After an update's spans and metric deltas were committed. */
  updateExported(kind: string, exportDelaySeconds: number): void {
    this.updatesExported.inc({ kind: WORD.test(kind) ? kind : 'other' });
    if (Number.isFinite(exportDelaySeconds)) this.exportDelay.observe(Math.max(0, exportDelaySeconds));
  }

  /** Events read for one update, counted by domain event type. */
  engineEvents(countsByType: Readonly<Record<string, number>>): void {
    for (const [type, n] of Object.entries(countsByType)) {
      if (Number.isFinite(n) && n > 0) this.engineEventsRead.inc({ type: ENGINE_EVENT_TYPES.has(type) ? type : 'unknown' }, n);
    }
  }

  /** Counts one error; `_cause` is accepted so call sites can pass it along, logging is theirs. */
  error(code: ErrorCode, _cause?: unknown): void {
    this.errors.inc({ code: code in ERROR_CODES ? code : 'INTERNAL' });
  }

  /**
   * The error of the last scrape's store read, or undefined once a scrape has read the store
   * in full (and before the first scrape). Readiness fails while it is set.
   */
  storeReadFailure(): unknown {
    return this.lastStoreFailure;
  }

  setLeader(isLeader: boolean): void {
    this.leading = isLeader;
    this.leader.set(isLeader ? 1 : 0);
  }

  /**
   * The exposition for one scrape: OpenMetrics when the Accept header asks for it, else the
   * Prometheus text format. Rejects with the store's error when a store read fails (the HTTP
   * layer answers 503, so Prometheus records the scrape as failed, `up == 0`).
   */
  async render(accept?: string): Promise<RenderedMetrics> {
    const format = negotiateFormat(accept);
    // A follower serves pulumi_exporter_* only: the leader serves the shared pulumi_* series once.
    // A follower reads no store rows, so an earlier failure as leader says nothing about now.
    if (!this.leading) this.lastStoreFailure = undefined;
    const store = this.leading ? await this.storePart(format) : undefined;
    // A registry per scrape: prom-client renames counters in place when rendering
    // OpenMetrics, which must not leak into the long-lived self-metrics or into a concurrent
    // Prometheus-format scrape.
    const out = new Registry<RegistryContentType>();
    if (format === 'openmetrics') out.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const def of SELF_DEFINITIONS) {
      const own = this.selfMetrics.get(def.name);
      // prom-client's registerMetric is typed for its own classes but only needs this shape.
      if (own) out.registerMetric(new RenamableView(own) as unknown as Metric);
    }
    const self = await out.metrics();
    const selfBytes = Buffer.from(self, 'utf8');
    if (store === undefined) {
      return { contentType: out.contentType, body: self, parts: () => [selfBytes], byteLength: selfBytes.length, gzipParts: async () => [await gzipAsync(selfBytes)] };
    }
    const parts = (): Buffer[] => [...store.map((p) => p.bytes), selfBytes];
    return {
      contentType: out.contentType,
      // Built only when asked for: the HTTP layer sends the parts.
      get body() {
        return Buffer.concat(parts()).toString('utf8');
      },
      parts,
      byteLength: store.reduce((n, p) => n + p.bytes.length, selfBytes.length),
      gzipParts: async () => {
        // One chunk at a time: compressing every chunk at once (the first scrape) would hold a
        // compressor's memory per chunk. Chunks that did not change are compressed already.
        const members: Buffer[] = [];
        for (const p of store) members.push(await p.gzip());
        members.push(await gzipAsync(selfBytes));
        return members;
      },
    };
  }

  /** The store-backed families, ending with the separator the self-metrics follow. */
  private storePart(format: ExpositionFormat): Promise<ExpositionPiece[]> {
    const run = this.refreshing.then(() => this.refreshExposition(format));
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  /**
   * Brings the exposition up to the store's metrics stamp, read before any row: unchanged, it
   * is reused; else the store's rows of what changed since are applied when the store can
   * tell what that is (SQLite: this process made every write), and everything is read again
   * when it cannot (another replica wrote, or the last read failed).
   */
  private async refreshExposition(format: ExpositionFormat): Promise<ExpositionPiece[]> {
    let stamp: number | undefined;
    try {
      stamp = await this.store.readMetricsStamp();
    } catch {
      // The reads below fail the same way and are logged and counted there.
      stamp = undefined;
    }
    const known = this.expositionStamp;
    if (stamp !== undefined && known !== undefined) {
      if (stamp === known) return this.exposition.pieces(format);
      const changed = await this.readStore(async () => this.store.readMetricsChanges?.(known));
      if (changed !== undefined) {
        this.exposition.update(changed.changes, storeSeries(changed));
        this.expositionStamp = changed.stamp;
        return this.exposition.pieces(format);
      }
    }
    const snapshot = await this.readStore(() => this.readSnapshot());
    this.exposition.reset(storeSeries(snapshot));
    this.expositionStamp = stamp;
    return this.exposition.pieces(format);
  }

  /**
   * A store read for the exposition. When it fails the scrape fails whole, and the exposition
   * may not stand in for the store until a scrape has read everything again (which also clears
   * storeReadFailure for readiness).
   */
  private async readStore<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      this.expositionStamp = undefined;
      this.lastStoreFailure = err;
      this.error(errorCodeOf(err));
      throw err;
    }
  }

  private async readSnapshot(): Promise<StoreSnapshot> {
    const snapshot = await readStoreSnapshot(this.store);
    this.lastStoreFailure = undefined;
    return snapshot;
  }

  private own<M extends Metric>(def: MetricDefinition, metric: M): M {
    this.selfMetrics.set(def.name, metric);
    return metric;
  }
}

function boundedEndpoint(endpoint: string): string {
  return API_ENDPOINTS.has(endpoint) ? endpoint : 'other';
}

interface FamilyData {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: unknown[];
}

/** A self-metric seen through its own name, so the per-scrape registry may rename it. */
class RenamableView {
  readonly help: string;
  readonly type: string;
  readonly aggregator: string;
  name: string;

  constructor(private readonly inner: Metric) {
    const m = inner as unknown as { name: string; help: string; type: string; aggregator: string };
    this.name = m.name;
    this.help = m.help;
    this.type = m.type;
    this.aggregator = m.aggregator;
  }

  async get(): Promise<FamilyData> {
    const data = (await this.inner.get()) as unknown as FamilyData;
    return { ...data, name: this.name };
  }
}
