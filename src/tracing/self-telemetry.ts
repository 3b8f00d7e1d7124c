import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Logger } from '../logging/logger.js';

// The exporter's own telemetry through the OpenTelemetry Node SDK. Loaded (dynamically, by
// app.ts) only when it is switched on, so the default process does not pay for the SDK.

export interface SelfTelemetryOptions {
  /** OTLP/HTTP (protobuf) URL for the exporter's own spans. */
  readonly tracesEndpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly version: string;
  readonly logger: Logger;
}

export interface SelfTelemetry {
  /** Flushes and stops; idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Starts NodeSDK with everything it would otherwise read from OTEL_* variables given
 * explicitly: those variables configure the update traces (OTEL_SERVICE_NAME=pulumi,
 * OTEL_TRACES_EXPORTER, ...), not the exporter's own spans, whose resource is always
 * service.name=pulumi-update-exporter. No logs, no SDK metrics.
 */
export function startSelfTelemetry(options: SelfTelemetryOptions): SelfTelemetry {
  const sdk = new NodeSDK({
    autoDetectResources: false,
    resource: resourceFromAttributes({ 'service.name': 'pulumi-update-exporter', 'service.version': options.version }),
    traceExporter: new OTLPTraceExporter({ url: options.tracesEndpoint, headers: { ...options.headers } }),
    metricReaders: [],
    logRecordProcessors: [],
    textMapPropagator: null,
    // Pulumi Cloud and collector requests (fetch); request headers, the token among them, are never recorded.
    instrumentations: [new UndiciInstrumentation()],
  });
  sdk.start();
  options.logger.info({ endpoint: options.tracesEndpoint }, 'self-telemetry: the exporter traces its own work');
  let stopped: Promise<void> | undefined;
  return {
    shutdown: () =>
      (stopped ??= sdk.shutdown().catch((err: unknown) => {
        options.logger.warn({ err }, 'self-telemetry: flushing the last spans failed');
      })),
  };
}
