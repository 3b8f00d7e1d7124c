import type { Attributes, SpanRecord, TraceRecord } from '../domain/trace.js';
import { ExporterError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { noopSinkObserver, type ExportOutcome, type SinkObserver, type SpanSink } from './span-sink.js';

export interface ConsoleSpanSinkDeps {
  readonly logger: Logger;
  readonly observer?: SinkObserver;
  /** Where lines go; process.stdout by default. */
  readonly write?: (line: string) => void;
}

/** One span as the console exporter prints it: OTLP/JSON-like names, hex ids, nanosecond strings. */
export interface ConsoleSpanLine {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: 'SPAN_KIND_SERVER' | 'SPAN_KIND_INTERNAL';
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes: Attributes;
  readonly events: readonly { readonly name: string; readonly timeUnixNano: string; readonly attributes: Attributes }[];
  readonly status: { readonly code: 'STATUS_CODE_UNSET' | 'STATUS_CODE_OK' | 'STATUS_CODE_ERROR'; readonly message?: string };
  readonly resource: Readonly<Record<string, string>>;
}

/** OTEL_TRACES_EXPORTER=console: one JSON line per span, for trying the exporter without a collector. */
export class ConsoleSpanSink implements SpanSink {
  readonly enabled = true;
  private readonly write: (line: string) => void;
  private readonly observer: SinkObserver;
  private readonly logger: Logger;

  constructor(
    private readonly serviceName: string,
    deps: ConsoleSpanSinkDeps,
  ) {
    this.write = deps.write ?? ((line) => void process.stdout.write(line));
    this.observer = deps.observer ?? noopSinkObserver;
    this.logger = deps.logger;
  }

  export(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    let spans = 0;
    for (const trace of traces) {
      const resource = trace.resource['service.name'] === undefined ? { ...trace.resource, 'service.name': this.serviceName } : trace.resource;
      try {
        for (const span of trace.spans) this.write(`${JSON.stringify(toConsoleLine(span, resource))}\n`);
      } catch (err) {
        const error = new ExporterError('TRACE_EXPORT_FAILED', `writing trace ${trace.traceId} to the console failed`, {
          cause: err,
          retryable: true,
          details: { reason: 'write', traceId: trace.traceId },
        });
        this.observer.exportFailed('write');
        this.logger.debug({ err: error }, 'trace export failed');
        return Promise.resolve({ code: 'failed', retryable: true, reason: 'write', error });
      }
      spans += trace.spans.length;
      this.observer.spansExported(trace.spans.length);
    }
    return Promise.resolve({ code: 'success', spans });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export function toConsoleLine(span: SpanRecord, resource: Readonly<Record<string, string>>): ConsoleSpanLine {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId ?? '',
    name: span.name,
    kind: span.kind === 'server' ? 'SPAN_KIND_SERVER' : 'SPAN_KIND_INTERNAL',
    startTimeUnixNano: msToNanos(span.startTimeMs),
    endTimeUnixNano: msToNanos(span.endTimeMs),
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, timeUnixNano: msToNanos(e.timeMs), attributes: e.attributes })),
    status: {
      code: span.status.code === 'error' ? 'STATUS_CODE_ERROR' : span.status.code === 'ok' ? 'STATUS_CODE_OK' : 'STATUS_CODE_UNSET',
      ...(span.status.message === undefined ? {} : { message: span.status.message }),
    },
    resource,
  };
}

/** Exact for integer milliseconds; sub-millisecond parts are rounded to whole nanoseconds. */
function msToNanos(ms: number): string {
  const whole = Math.trunc(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}
