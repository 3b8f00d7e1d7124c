import type { ExportOutcome, SpanSink } from './span-sink.js';

/** OTEL_TRACES_EXPORTER=none: nothing is sent, every update counts as exported. */
export class NoopSpanSink implements SpanSink {
  readonly enabled = false;

  export(): Promise<ExportOutcome> {
    return Promise.resolve({ code: 'success', spans: 0 });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
