import { randomUUID } from 'node:crypto';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Config } from '../config/schema.js';
import { errorCodeOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { StateStore } from '../state/state-store.js';
import type { ExporterMetrics } from './exporter-metrics.js';
import { selfMetricData, storeMetricData, type PromFamily } from './otlp-metric-data.js';
import { readStoreSnapshot } from './store-samples.js';

// The OTLP metrics push through the OpenTelemetry metrics SDK. Loaded (dynamically, by
// app.ts) only when metricsPush.exporter is otlp, so the default process does not pay for it.

export interface MetricsPushOptions {
  readonly config: Config['metricsPush'];
  readonly store: StateStore;
  readonly metrics: ExporterMetrics;
  /** Only the leader pushes the store-backed pulumi_* series, as only it serves them on /metrics. */
  readonly isLeader: () => boolean;
  readonly version: string;
  readonly logger: Logger;
  /** Unix ms since which the self-metrics (pulumi_exporter_*) count: when they were created. */
  readonly selfMetricsSinceMs: number;
}

export interface MetricsPush {
  /** Pushes now, outside the interval (benchmarks); resolves once the collector answered or the push failed. */
  flush(): Promise<void>;
  /** Pushes once more (the store's latest values), then stops; idempotent. */
  shutdown(): Promise<void>;
}

const SCOPE = 'pulumi-update-exporter';

type ExporterConfig = NonNullable<ConstructorParameters<typeof ProtobufMetricExporter>[0]>;

/**
 * A PeriodicExportingMetricReader whose only data comes from a MetricProducer that reads the
 * store and the self-metrics registry at every collection (no SDK instruments), exported by
 * the OTLP/HTTP metrics exporter. Every push carries the full cumulative values, so a push the
 * collector missed loses nothing: the next one carries it.
 */
export function startMetricsPush(options: MetricsPushOptions): MetricsPush {
  const { config, logger } = options;
  const exporterConfig: ExporterConfig = {
    url: config.endpoint,
    headers: { ...config.headers },
    timeoutMillis: config.timeoutMillis,
    // The SDK's CompressionAlgorithm enum has exactly these string values.
    compression: config.compression as ExporterConfig['compression'],
  };
  const otlp = config.protocol === 'http/json' ? new JsonMetricExporter(exporterConfig) : new ProtobufMetricExporter(exporterConfig);
  const reader = new PeriodicExportingMetricReader({
    exporter: new ObservedExporter(otlp, options.metrics, logger, config.endpoint),
    exportIntervalMillis: config.intervalMillis,
    exportTimeoutMillis: config.timeoutMillis,
    metricProducers: [new ExporterMetricProducer(options)],
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': 'pulumi-update-exporter',
      'service.version': options.version,
      // Tells the replicas' pushes apart (Prometheus' OTLP receiver makes it the instance
      // label), as a scrape's target does: each replica pushes its own pulumi_exporter_*.
      'service.instance.id': randomUUID(),
    }),
    readers: [reader],
  });
  logger.info({ endpoint: config.endpoint, intervalMillis: config.intervalMillis }, 'metrics push: pushing the metrics over OTLP');
  let stopped: Promise<void> | undefined;
  return {
    flush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= provider.shutdown().catch((err: unknown) => {
        logger.warn({ err }, 'metrics push: the last push failed');
      })),
  };
}

/** Reads the metrics at collection time: the store (leader only) and the self-metrics registry. */
class ExporterMetricProducer implements MetricProducer {
  private storeStartMs: number | undefined;

  constructor(private readonly options: MetricsPushOptions) {}

  async collect(): Promise<CollectionResult> {
    const errors: unknown[] = [];
    const nowMs = Date.now();
    let fromStore: MetricData[] = [];
    if (this.options.isLeader()) {
      try {
        fromStore = await this.readStore(nowMs);
      } catch (err) {
        // As a failed scrape, the push then carries no pulumi_* series (never partial ones).
        errors.push(err);
        this.options.metrics.error(errorCodeOf(err), err);
        this.options.logger.warn({ err }, 'metrics push: the state store could not be read; this push has no pulumi_* series');
      }
    }
    // After the store read, so a failed read is counted in this very push.
    const self = selfMetricData(
      (await this.options.metrics.registry.getMetricsAsJSON()) as unknown as PromFamily[],
      { storeStartMs: 0, selfStartMs: this.options.selfMetricsSinceMs, nowMs },
    );
    return {
      // The reader keeps the MeterProvider's resource; only the scope metrics of this result count.
      resourceMetrics: {
        resource: resourceFromAttributes({}),
        scopeMetrics: [{ scope: { name: SCOPE, version: this.options.version }, metrics: [...fromStore, ...self] }],
      },
      errors,
    };
  }

  private async readStore(nowMs: number): Promise<MetricData[]> {
    const s = this.options.store;
    this.storeStartMs ??= await s.readMetricsStartMs();
    return storeMetricData(
      await readStoreSnapshot(s),
      { storeStartMs: this.storeStartMs, selfStartMs: this.options.selfMetricsSinceMs, nowMs },
    );
  }
}

/** The OTLP exporter, with every failed push logged and counted (METRICS_PUSH_FAILED). */
class ObservedExporter implements PushMetricExporter {
  private failing = false;

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly metrics: ExporterMetrics,
    private readonly logger: Logger,
    private readonly endpoint: string,
  ) {}

  export(data: ResourceMetrics, done: (result: ExportResult) => void): void {
    this.inner.export(data, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        if (this.failing) this.logger.info({ endpoint: this.endpoint }, 'metrics push: the collector accepts pushes again');
        this.failing = false;
      } else {
        this.failing = true;
        this.metrics.error('METRICS_PUSH_FAILED', result.error);
        this.logger.warn(
          { code: 'METRICS_PUSH_FAILED', endpoint: this.endpoint, reason: result.error?.message ?? 'unknown' },
          'metrics push: the collector did not accept the metrics; the next push carries the same cumulative values, so nothing is lost',
        );
      }
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
