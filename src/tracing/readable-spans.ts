import { SpanKind, SpanStatusCode, TraceFlags, type Attributes as OtelAttributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { hrTimeDuration, millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import type { Attributes, SpanRecord, TraceRecord } from '../domain/trace.js';
import { ExporterError } from '../errors.js';

/** The instrumentation scope every exported span carries. */
export const INSTRUMENTATION_SCOPE: InstrumentationScope = { name: 'pulumi-update-exporter' };

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * Rejects records the wire cannot carry faithfully (ids that are not lowercase hex of the
 * right length, spans of another trace, non-finite or reversed times). The conversion layer
 * promises well-formed records; checking here turns a bug there into a coded error instead
 * of garbage bytes on the wire.
 */
export function validateTrace(trace: TraceRecord): void {
  const fail = (problem: string): never => {
    throw new ExporterError('TRACE_EXPORT_FAILED', `trace ${trace.traceId} cannot be exported: ${problem}`, {
      retryable: false,
      details: { reason: 'invalid', traceId: trace.traceId },
    });
  };
  if (!TRACE_ID.test(trace.traceId) || trace.traceId === ZERO_TRACE_ID) fail('trace id is not 32 lowercase hex characters (non-zero)');
  for (const span of trace.spans) {
    const where = `span ${JSON.stringify(span.name)} (${span.spanId})`;
    if (span.traceId !== trace.traceId) fail(`${where} belongs to trace ${span.traceId}`);
    if (!SPAN_ID.test(span.spanId) || span.spanId === ZERO_SPAN_ID) fail(`${where} has a span id that is not 16 lowercase hex characters (non-zero)`);
    if (span.parentSpanId !== undefined && !SPAN_ID.test(span.parentSpanId)) fail(`${where} has an invalid parent span id`);
    if (!Number.isFinite(span.startTimeMs) || !Number.isFinite(span.endTimeMs) || span.startTimeMs < 0) fail(`${where} has a non-finite or negative time`);
    if (span.endTimeMs < span.startTimeMs) fail(`${where} ends before it starts`);
    for (const event of span.events) {
      if (!Number.isFinite(event.timeMs) || event.timeMs < 0) fail(`${where} has event ${JSON.stringify(event.name)} with an invalid time`);
    }
  }
}

/**
 * The SDK's view of a finished span, built from a plain record. Every span of a trace shares
 * one Resource and one scope object, so the OTLP serializers group them into a single
 * ResourceSpans/ScopeSpans per request.
 */
export function toReadableSpans(trace: TraceRecord, fallbackServiceName: string): ReadableSpan[] {
  validateTrace(trace);
  const resource = traceResource(trace, fallbackServiceName);
  return trace.spans.map((span) => toReadableSpan(span, resource));
}

function traceResource(trace: TraceRecord, fallbackServiceName: string): Resource {
  const attributes: Record<string, string> = { ...trace.resource };
  if (attributes['service.name'] === undefined) attributes['service.name'] = fallbackServiceName;
  return resourceFromAttributes(attributes);
}

function toReadableSpan(span: SpanRecord, resource: Resource): ReadableSpan {
  const context: SpanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false };
  const parentSpanContext: SpanContext | undefined =
    span.parentSpanId === undefined
      ? undefined
      : { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false };
  const startTime = toHrTime(span.startTimeMs);
  const endTime = toHrTime(span.endTimeMs);
  const events: TimedEvent[] = span.events.map((event) => ({
    name: event.name,
    time: toHrTime(event.timeMs),
    attributes: toOtelAttributes(event.attributes),
    droppedAttributesCount: 0,
  }));
  return {
    name: span.name,
    kind: span.kind === 'server' ? SpanKind.SERVER : SpanKind.INTERNAL,
    spanContext: () => context,
    parentSpanContext,
    startTime,
    endTime,
    duration: hrTimeDuration(startTime, endTime),
    ended: true,
    status: toStatus(span.status),
    attributes: toOtelAttributes(span.attributes),
    links: [],
    events,
    resource,
    instrumentationScope: INSTRUMENTATION_SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function toHrTime(ms: number): HrTime {
  return millisToHrTime(ms);
}

function toStatus(status: SpanRecord['status']): ReadableSpan['status'] {
  const code = status.code === 'error' ? SpanStatusCode.ERROR : status.code === 'ok' ? SpanStatusCode.OK : SpanStatusCode.UNSET;
  return status.message === undefined ? { code } : { code, message: status.message };
}

function toOtelAttributes(attributes: Attributes): OtelAttributes {
  const out: OtelAttributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    // The SDK types arrays as mutable; copying also keeps the record frozen-safe.
    out[key] = typeof value === 'object' ? [...value] : value;
  }
  return out;
}
