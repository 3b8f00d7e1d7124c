import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metric, RegistryContentType } from 'prom-client';
import { ENGINE_EVENT_WIRE_TYPES } from '../domain/engine-event.js';
import { ERROR_CODES, errorCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { ApiEndpoint, ApiObserver, ApiResponseCode, RetryReason } from '../pulumi/api-observer.js';
import type { StateStore } from '../state/state-store.js';
import type { SinkObserver } from '../tracing/span-sink.js';
import type { MetricDefinition } from './definitions.js';
import { METRIC_DEFINITIONS, METRICS } from './definitions.js';
import { negotiateFormat } from './negotiate-format.js';
import type { Sample, StoreSnapshot } from './store-samples.js';
import { storeSamples } from './store-samples.js';

export interface ExporterMetricsOptions {
  readonly store: StateStore;
  readonly version: string;
  readonly revision: string;
  /** metrics.resourceOperationDurationByStack; see updateMetricDeltas. */
  readonly durationByStack?: boolean;
}

export interface RenderedMetrics {
  readonly contentType: string;
  readonly body: string;
}

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
 * A failed store read fails the whole scrape (render() rejects with the store's error, and
 * pulumi_exporter_errors_total{code} counts it): a partial exposition would silently drop
 * every pulumi_* series. storeReadFailure() tells readiness that the store cannot be read.
 *
 * Every label value taken from a caller is checked against a fixed set or a short-word
 * pattern (anything else becomes `other`/`unknown`), so labels stay bounded.
 */
export class ExporterMetrics implements ApiObserver, SinkObserver {
  /** Holds the self-metrics; never the global registry. */
  readonly registry: Registry<RegistryContentType> = new Registry<RegistryContentType>();

  private readonly store: StateStore;
  private lastStoreFailure: unknown;
  private readonly selfMetrics = new Map<string, Metric>();
  private last: LastPoll | undefined;
  /** Only the leader serves the store-backed pulumi_* series (one replica of several). */
  private leading = true;

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
  private readonly spanFailures: Counter<'reason'>;
  private readonly exportDelay: Histogram;
  private readonly errors: Counter<'code'>;
  private readonly leader: Gauge;

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
    this.spanFailures = counter(METRICS.spanExportFailuresTotal);
    this.exportDelay = histogram(METRICS.exportDelaySeconds);
    this.errors = counter(METRICS.errorsTotal);
    this.leader = gauge(METRICS.leader);

    // Known label values start at 0 so rate() and increase() see the first increment.
    for (const result of ['success', 'failure'] as const) this.polls.inc({ result }, 0);
    for (const code of Object.keys(ERROR_CODES)) this.errors.inc({ code }, 0);
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
    // A follower serves pulumi_exporter_* only: the leader serves the shared pulumi_* series once.
    const leading = this.leading;
    const samples = leading ? storeSamples(await this.readSnapshot()) : undefined;
    // A registry per scrape: the store-backed families carry this scrape's snapshot, and
    // prom-client renames counters in place when rendering OpenMetrics, which must not leak
    // into the long-lived self-metrics or into a concurrent Prometheus-format scrape.
    const out = new Registry<RegistryContentType>();
    if (negotiateFormat(accept) === 'openmetrics') out.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const def of METRIC_DEFINITIONS) {
      const own = this.selfMetrics.get(def.name);
      if (own === undefined && samples === undefined) continue;
      const family = own ? new RenamableView(own) : new SnapshotFamily(def, samples?.get(def.name) ?? []);
      // prom-client's registerMetric is typed for its own classes but only needs this shape.
      out.registerMetric(family as unknown as Metric);
    }
    return { contentType: out.contentType, body: await out.metrics() };
  }

  private async readSnapshot(): Promise<StoreSnapshot> {
    const s = this.store;
    const reads = await Promise.allSettled([
      s.readCounters(),
      s.readHistograms(),
      s.listStacks(),
      s.readLastUpdates(),
      s.readLastSuccesses(),
      s.listInProgress(),
    ]);
    const failed = reads.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.lastStoreFailure = failed.reason;
      this.error(errorCodeOf(failed.reason));
      throw failed.reason;
    }
    this.lastStoreFailure = undefined;
    const [counters, histograms, stacks, lastUpdates, lastSuccesses, inProgress] = reads;
    const ok = <T>(r: PromiseSettledResult<T>): T | undefined => (r.status === 'fulfilled' ? r.value : undefined);
    return {
      counters: ok(counters),
      histograms: ok(histograms),
      stacks: ok(stacks),
      lastUpdates: ok(lastUpdates),
      lastSuccesses: ok(lastSuccesses),
      inProgress: ok(inProgress),
    };
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
  values: Sample[];
}

/**
 * A store-backed metric family in the shape prom-client's Registry renders (name, help,
 * type, get()). Histogram lines are complete samples (`_bucket` with `le`, `_sum`, `_count`).
 */
class SnapshotFamily {
  readonly help: string;
  readonly type: string;
  readonly aggregator = 'sum';
  // Mutable on purpose: an OpenMetrics registry strips `_total` from counter names.
  name: string;

  constructor(
    def: MetricDefinition,
    private readonly samples: Sample[],
  ) {
    this.name = def.name;
    this.help = def.help;
    this.type = def.type;
  }

  get(): Promise<FamilyData> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.samples,
    });
  }
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
