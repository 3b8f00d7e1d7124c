import type { Link } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/*
 * Size estimates are upper bounds of the OTLP/JSON encoding the SDK's JSON serializer
 * produces (hex ids, nanosecond timestamps as decimal strings, field names spelled out).
 * OTLP/protobuf encodes the same content in fewer bytes (binary ids, fixed64 timestamps,
 * 1-6 byte tags and lengths where JSON writes field names and quotes), so the one estimate
 * bounds both protocols. Strings are measured exactly (UTF-8 of their JSON form, escapes
 * included); everything else is a fixed overhead with headroom. test/unit/tracing checks the
 * bound against both serializers.
 */

/** Field names, punctuation, ids, timestamps, kind, flags, status code and dropped counts of one span. */
const SPAN_OVERHEAD_BYTES = 512;
/** `{"key":...,"value":{"<type>Value":...}}` around one key and value. */
const ATTRIBUTE_OVERHEAD_BYTES = 48;
/** One array element's `{"<type>Value":...}` wrapper. */
const ARRAY_ELEMENT_OVERHEAD_BYTES = 24;
/** `"arrayValue":{"values":[]}` / `"kvlistValue":{"values":[]}`. */
const LIST_OVERHEAD_BYTES = 32;
/** Any number in its JSON form (the longest double is 24 characters) or `false`. */
const SCALAR_BYTES = 32;
/** Name wrapper, timestamp and dropped count of one event. */
const EVENT_OVERHEAD_BYTES = 128;
/** Ids, trace state wrapper, flags and dropped count of one link. */
const LINK_OVERHEAD_BYTES = 192;
/** `{"resourceSpans":[{"resource":{...},"scopeSpans":[{"scope":{...},"spans":[]}]}]}` without the attributes. */
const ENVELOPE_OVERHEAD_BYTES = 256;

/** One OTLP request's worth of spans, in their original order. */
export interface SpanBatch {
  readonly spans: ReadableSpan[];
  /** Estimated request body size (an upper bound for OTLP/JSON and OTLP/protobuf). */
  readonly estimatedBytes: number;
  /** A single span whose own estimate exceeds `maxBytes`; sent alone rather than dropped. */
  readonly oversize: boolean;
}

export interface BatchLimits {
  readonly maxSpans: number;
  readonly maxBytes: number;
}

/**
 * Splits spans, keeping their order, into batches of at most `maxSpans` spans whose
 * estimated request size stays within `maxBytes`. A span that alone exceeds `maxBytes`
 * forms its own batch, marked `oversize`.
 */
export function splitIntoBatches(spans: readonly ReadableSpan[], limits: BatchLimits): SpanBatch[] {
  const maxSpans = Math.max(1, Math.floor(limits.maxSpans));
  const batches: SpanBatch[] = [];
  let current: ReadableSpan[] = [];
  let currentBytes = 0;
  // The serializers group a request's spans by resource and scope; each group's wrapper is
  // charged once per batch.
  let groups = new Set<string>();
  const envelopes = new Map<string, number>();
  const resourceIds = new Map<unknown, number>();

  const flush = (): void => {
    if (current.length === 0) return;
    batches.push({ spans: current, estimatedBytes: currentBytes, oversize: current.length === 1 && currentBytes > limits.maxBytes });
    current = [];
    currentBytes = 0;
    groups = new Set();
  };

  for (const span of spans) {
    const spanBytes = estimateSpanBytes(span);
    let resourceId = resourceIds.get(span.resource);
    if (resourceId === undefined) {
      resourceId = resourceIds.size;
      resourceIds.set(span.resource, resourceId);
    }
    const group = `${resourceId}\u0000${scopeKey(span)}`;
    let envelope = envelopes.get(group);
    if (envelope === undefined) {
      envelope = estimateEnvelopeBytes(span);
      envelopes.set(group, envelope);
    }
    const added = spanBytes + (groups.has(group) ? 0 : envelope);
    if (current.length > 0 && (current.length >= maxSpans || currentBytes + added > limits.maxBytes)) flush();
    if (!groups.has(group)) {
      currentBytes += envelope;
      groups.add(group);
    }
    currentBytes += spanBytes;
    current.push(span);
  }
  flush();
  return batches;
}

/** Upper bound of the bytes one span adds to an OTLP request (see the note at the top). */
export function estimateSpanBytes(span: ReadableSpan): number {
  let bytes = SPAN_OVERHEAD_BYTES + stringBytes(span.name) + attributesBytes(span.attributes);
  if (span.status.message !== undefined) bytes += stringBytes(span.status.message);
  const traceState = span.spanContext().traceState?.serialize();
  if (traceState !== undefined) bytes += stringBytes(traceState);
  for (const event of span.events) bytes += eventBytes(event);
  for (const link of span.links) bytes += linkBytes(link);
  return bytes;
}

/** Upper bound of the request wrapper around the spans of one resource and scope. */
export function estimateEnvelopeBytes(span: ReadableSpan): number {
  const scope = span.instrumentationScope;
  return (
    ENVELOPE_OVERHEAD_BYTES +
    attributesBytes(span.resource.attributes) +
    stringBytes(span.resource.schemaUrl ?? '') +
    stringBytes(scope.name) +
    stringBytes(scope.version ?? '') +
    stringBytes(scope.schemaUrl ?? '')
  );
}

function scopeKey(span: ReadableSpan): string {
  const s = span.instrumentationScope;
  return `${s.name}@${s.version ?? ''}:${s.schemaUrl ?? ''}`;
}

function eventBytes(event: TimedEvent): number {
  return EVENT_OVERHEAD_BYTES + stringBytes(event.name) + attributesBytes(event.attributes ?? {});
}

function linkBytes(link: Link): number {
  const traceState = link.context.traceState?.serialize();
  return LINK_OVERHEAD_BYTES + attributesBytes(link.attributes ?? {}) + (traceState === undefined ? 0 : stringBytes(traceState));
}

function attributesBytes(attributes: Readonly<Record<string, unknown>>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(attributes)) bytes += ATTRIBUTE_OVERHEAD_BYTES + stringBytes(key) + valueBytes(value);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return stringBytes(value);
  if (value instanceof Uint8Array) return 2 + Math.ceil(value.length / 3) * 4; // base64 in quotes
  if (Array.isArray(value)) {
    let bytes = LIST_OVERHEAD_BYTES;
    for (const element of value) bytes += ARRAY_ELEMENT_OVERHEAD_BYTES + valueBytes(element);
    return bytes;
  }
  if (typeof value === 'object' && value !== null) {
    return LIST_OVERHEAD_BYTES + attributesBytes(value as Record<string, unknown>);
  }
  return SCALAR_BYTES;
}

/** Exact UTF-8 length of the string's JSON form, quotes and escapes included. */
function stringBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), 'utf8');
}
