import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { errorCodeOf } from '../errors.js';

// Spans about the exporter's own work (poll cycles, stack syncs). Through the OpenTelemetry
// API only: with self-telemetry off no SDK is registered and these are no-ops; with it on
// (self-telemetry.ts) they go to the exporter's own tracer provider, never to the update
// traces, which the span sink sends without any global provider.

const tracer = trace.getTracer('pulumi-update-exporter');

/**
 * Runs fn inside an active span, so spans started within (HTTP requests to Pulumi Cloud)
 * become its children. A failure (fn throws, or `failure` finds an error in its result, for
 * work that reports failures as values) sets the span's status to the error code, never the
 * message, so no upstream text reaches the span.
 */
export function withSelfSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (set: (attributes: Attributes) => void) => Promise<T>,
  failure?: (result: T) => unknown,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      const result = await fn((more) => span.setAttributes(more));
      const err = failure?.(result);
      if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorCodeOf(err) });
      return result;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCodeOf(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
