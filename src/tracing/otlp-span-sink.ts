import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpHttpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config/schema.js';
import type { TraceRecord } from '../domain/trace.js';
import { ExporterError, isExporterError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { redact } from '../secrets.js';
import { splitIntoBatches } from './batching.js';
import { ExchangeRecorder, type ExchangeWindow } from './exchange-recorder.js';
import { judgeBatch, type BatchVerdict } from './export-verdict.js';
import { toReadableSpans } from './readable-spans.js';
import { noopSinkObserver, type ExportOutcome, type SinkObserver, type SpanSink } from './span-sink.js';

export interface OtlpSpanSinkDeps {
  readonly logger: Logger;
  readonly observer?: SinkObserver;
}

type ExporterOptions = NonNullable<ConstructorParameters<typeof OtlpProtoTraceExporter>[0]>;

interface TraceExporter {
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** How long an abandoned batch may take to wind down before the next one starts regardless. */
const ABANDON_GRACE_MS = 1_000;

/**
 * Sends each trace through the OpenTelemetry SDK's OTLP/HTTP exporter (protobuf or JSON),
 * in batches of at most `batchMaxSpans` spans and an estimated `batchMaxBytes` (see
 * batching.ts), in span order, one batch at a time (as the SDK's own
 * BatchSpanProcessor does), each bounded by `timeoutMillis` including the SDK's retries.
 */
export class OtlpSpanSink implements SpanSink {
  readonly enabled = true;
  private readonly exporter: TraceExporter;
  private readonly recorder = new ExchangeRecorder();
  private readonly logger: Logger;
  private readonly observer: SinkObserver;
  private readonly endpointForLogs: string;
  /** Serializes exports: the recorder attributes every request to the one open batch. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Settles once an abandoned batch's SDK export has wound down. */
  private draining: Promise<void> = Promise.resolve();
  private closed = false;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: Config['traces'],
    deps: OtlpSpanSinkDeps,
  ) {
    this.logger = deps.logger;
    this.observer = deps.observer ?? noopSinkObserver;
    this.endpointForLogs = safeEndpoint(config.endpoint);
    // Everything is set explicitly so the SDK's own environment fallbacks (OTEL_EXPORTER_OTLP_*)
    // cannot change what config/ decided; only header names absent from config could still be added.
    const options: ExporterOptions = {
      url: config.endpoint,
      headers: { ...config.headers },
      timeoutMillis: config.timeoutMillis,
      concurrencyLimit: 8,
      compression: 'none' as ExporterOptions['compression'],
      httpAgentOptions: this.recorder.agentFactory,
      userAgent: 'pulumi-update-exporter',
    };
    this.exporter = config.protocol === 'http/json' ? new OtlpHttpJsonTraceExporter(options) : new OtlpProtoTraceExporter(options);
  }

  export(trace: TraceRecord): Promise<ExportOutcome> {
    const run = this.chain.then(() => this.exportNow(trace));
    this.chain = run.catch(() => undefined);
    return run.catch((err: unknown) => this.failed(trace, 'unknown', true, `unexpected error: ${errorMessage(err)}`, err));
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.shutdownNow();
    return this.stopping;
  }

  private async exportNow(trace: TraceRecord): Promise<ExportOutcome> {
    if (this.closed) return this.failed(trace, 'shutdown', true, 'the span sink is shut down');
    let spans: ReadableSpan[];
    try {
      spans = toReadableSpans(trace, this.config.serviceName);
    } catch (err) {
      if (isExporterError(err)) return this.outcomeOf(trace, 'invalid', false, err);
      throw err;
    }
    const planned = splitIntoBatches(spans, { maxSpans: this.config.batchMaxSpans, maxBytes: this.config.batchMaxBytes });
    const batches = planned.length;
    for (const [index, { spans: batch, estimatedBytes, oversize }] of planned.entries()) {
      if (oversize) {
        // Dropping it would lose the span silently; a collector with a lower limit refuses it
        // visibly (http_4xx), which points at the cause.
        this.logger.warn(
          { traceId: trace.traceId, spanId: batch[0]?.spanContext().spanId, estimatedBytes, batchMaxBytes: this.config.batchMaxBytes },
          'span is larger than traces.batchMaxBytes; sending it alone in its own request',
        );
      }
      const verdict = await this.sendBatch(batch);
      if (!verdict.ok) {
        return this.failed(
          trace,
          verdict.reason,
          verdict.retryable,
          `batch ${index + 1}/${batches} (${batch.length} spans): ${verdict.detail}`,
          undefined,
          verdict.status,
        );
      }
      if (verdict.warning !== undefined) {
        this.logger.warn({ traceId: trace.traceId, warning: redact(verdict.warning) }, 'collector accepted spans with a warning');
      }
      this.notify(() => this.observer.spansExported(batch.length));
    }
    this.logger.debug({ traceId: trace.traceId, spans: spans.length, batches }, 'trace exported');
    return { code: 'success', spans: spans.length };
  }

  private async sendBatch(batch: ReadableSpan[]): Promise<BatchVerdict> {
    await this.draining;
    const window = this.recorder.open();
    const settled = new Promise<ExportResult>((resolve) => {
      try {
        this.exporter.export(batch, resolve);
      } catch (err) {
        resolve({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      }
    });
    const deadline = timer(this.config.timeoutMillis);
    try {
      const first = await Promise.race([settled, deadline.promise.then(() => undefined)]);
      if (first !== undefined) {
        return judgeBatch({ ok: first.code === ExportResultCode.SUCCESS, ...(first.error ? { error: first.error } : {}) }, window.exchanges, this.config.protocol);
      }
      this.draining = this.abandon(window, settled);
      return {
        ok: false,
        retryable: true,
        reason: 'timeout',
        detail: `no answer within ${this.config.timeoutMillis} ms (including retries)`,
      };
    } finally {
      deadline.cancel();
      this.recorder.close(window);
    }
  }

  /**
   * Cuts the SDK's in-flight attempt; the next batch waits (bounded) until the SDK has given
   * up, so none of its late retries is taken for the next batch's request.
   */
  private async abandon(window: ExchangeWindow, settled: Promise<ExportResult>): Promise<void> {
    window.abandon();
    const grace = timer(ABANDON_GRACE_MS);
    await Promise.race([settled, grace.promise]);
    grace.cancel();
  }

  private async shutdownNow(): Promise<void> {
    this.closed = true;
    const deadline = timer(this.config.timeoutMillis);
    try {
      await Promise.race([this.chain.then(() => this.draining), deadline.promise]);
      await Promise.race([
        this.exporter.shutdown().catch((err: unknown) => {
          this.logger.warn({ err }, 'OTLP exporter shutdown failed');
        }),
        deadline.promise,
      ]);
    } finally {
      deadline.cancel();
      this.recorder.dispose();
    }
  }

  private failed(
    trace: TraceRecord,
    reason: string,
    retryable: boolean,
    detail: string,
    cause?: unknown,
    status?: number,
  ): ExportOutcome {
    const error = new ExporterError('TRACE_EXPORT_FAILED', redact(`OTLP export of trace ${trace.traceId} to ${this.endpointForLogs} failed (${reason}): ${detail}`), {
      ...(cause === undefined ? {} : { cause }),
      retryable,
      details: { reason, endpoint: this.endpointForLogs, traceId: trace.traceId, status },
    });
    return this.outcomeOf(trace, reason, retryable, error);
  }

  private outcomeOf(trace: TraceRecord, reason: string, retryable: boolean, error: Error): ExportOutcome {
    this.notify(() => this.observer.exportFailed(reason));
    // The caller (sync) logs the failure with its update context; this is the transport view.
    this.logger.debug({ traceId: trace.traceId, reason, retryable, err: error }, 'trace export failed');
    return { code: 'failed', retryable, reason, error };
  }

  /** A broken metrics hook must neither turn an accepted trace into a failure nor make export() reject. */
  private notify(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.warn({ err }, 'span sink observer failed');
    }
  }
}

function timer(ms: number): { promise: Promise<void>; cancel(): void } {
  let handle: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    handle = setTimeout(resolve, ms);
    // A pending export keeps its own socket open; the deadline alone must not hold the process.
    handle.unref();
  });
  return { promise, cancel: () => clearTimeout(handle) };
}

/** The endpoint without credentials or query, for logs and error messages. */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
