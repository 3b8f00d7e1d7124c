import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { ConsoleSpanSink } from './console-span-sink.js';
import { NoopSpanSink } from './noop-span-sink.js';
import { OtlpSpanSink } from './otlp-span-sink.js';
import type { SinkObserver, SpanSink } from './span-sink.js';

export interface SpanSinkDeps {
  readonly logger: Logger;
  readonly observer?: SinkObserver;
  /** Line writer of the console exporter; process.stdout by default. */
  readonly write?: (line: string) => void;
}

/** The sink for `traces.exporter`: otlp (OTLP/HTTP, protobuf or JSON), console, or none. */
export function createSpanSink(config: Config['traces'], deps: SpanSinkDeps): SpanSink {
  switch (config.exporter) {
    case 'otlp':
      return new OtlpSpanSink(config, deps);
    case 'console':
      return new ConsoleSpanSink(config.serviceName, deps);
    case 'none':
      return new NoopSpanSink();
  }
}
