import type { TraceRecord } from '../domain/trace.js';

export type ExportOutcome =
  | { readonly code: 'success'; readonly spans: number }
  | { readonly code: 'failed'; readonly retryable: boolean; readonly reason: string; readonly error: Error };

/**
 * Where converted traces go. The sync layer marks an update exported only after
 * export() resolved with `success`. Never throws; never rejects.
 */
export interface SpanSink {
  /** False for OTEL_TRACES_EXPORTER=none: callers skip conversion output entirely. */
  readonly enabled: boolean;
  /**
   * Sends the traces (of one or more updates) together, in order; one outcome for all of
   * them: `success` only when every span was accepted. A failure does not say which trace
   * it was about.
   */
  export(traces: readonly TraceRecord[]): Promise<ExportOutcome>;
  /** Flushes and releases; idempotent and time-bounded. */
  shutdown(): Promise<void>;
}

/** Self-metrics hooks of a sink (pulumi_exporter_spans_exported_total, ..._span_export_failures_total). */
export interface SinkObserver {
  spansExported(count: number): void;
  /** reason: a bounded word such as timeout, network, http_5xx, http_4xx, too_large, rejected. */
  exportFailed(reason: string): void;
}

export const noopSinkObserver: SinkObserver = {
  spansExported: () => undefined,
  exportFailed: () => undefined,
};
