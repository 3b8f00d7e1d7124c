import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import type { SpanRecord, TraceRecord } from '../../../src/domain/trace.js';
import { isExporterError } from '../../../src/errors.js';
import { toReadableSpans, validateTrace } from '../../../src/tracing/readable-spans.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

function span(overrides: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: TRACE_ID,
    spanId: 'b7ad6b7169203331',
    name: 'update web/prod',
    kind: 'server',
    startTimeMs: 1_700_000_000_123,
    endTimeMs: 1_700_000_001_456,
    attributes: { 'pulumi.update.version': 3, 'pulumi.resource.diffs': ['a', 'b'] },
    status: { code: 'unset' },
    events: [],
    ...overrides,
  };
}

function trace(spans: SpanRecord[], resource: Record<string, string> = { 'service.name': 'svc' }): TraceRecord {
  return { traceId: TRACE_ID, resource, spans, droppedSpans: 0 };
}

describe('toReadableSpans', () => {
  it('keeps the given ids as a sampled span context and points children at their parent', () => {
    const [root, child] = toReadableSpans(
      trace([span(), span({ spanId: '00000000000000ff', parentSpanId: 'b7ad6b7169203331', kind: 'internal', name: 'create x:y:Z' })]),
      'fallback',
    );
    expect(root?.spanContext()).toEqual({ traceId: TRACE_ID, spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: false });
    expect(root?.parentSpanContext).toBeUndefined();
    expect(root?.kind).toBe(SpanKind.SERVER);
    expect(child?.kind).toBe(SpanKind.INTERNAL);
    expect(child?.parentSpanContext).toMatchObject({ traceId: TRACE_ID, spanId: 'b7ad6b7169203331' });
  });

  it('turns historical milliseconds into exact HrTime for start, end, duration and events', () => {
    const [s] = toReadableSpans(trace([span({ events: [{ name: 'diagnostic', timeMs: 1_700_000_000_999, attributes: { severity: 'info' } }] })]), 'x');
    expect(s?.startTime).toEqual([1_700_000_000, 123_000_000]);
    expect(s?.endTime).toEqual([1_700_000_001, 456_000_000]);
    expect(s?.duration).toEqual([1, 333_000_000]);
    expect(s?.events).toEqual([{ name: 'diagnostic', time: [1_700_000_000, 999_000_000], attributes: { severity: 'info' }, droppedAttributesCount: 0 }]);
    expect(s?.ended).toBe(true);
  });

  it('maps status codes and keeps the error message', () => {
    const spans = toReadableSpans(
      trace([
        span({ spanId: '0000000000000001', status: { code: 'ok' } }),
        span({ spanId: '0000000000000002', status: { code: 'error', message: 'boom' } }),
        span({ spanId: '0000000000000003', status: { code: 'unset' } }),
      ]),
      'x',
    );
    expect(spans.map((s) => s.status)).toEqual([{ code: SpanStatusCode.OK }, { code: SpanStatusCode.ERROR, message: 'boom' }, { code: SpanStatusCode.UNSET }]);
  });

  it('shares one resource and scope across the trace and fills in service.name only when missing', () => {
    const spans = toReadableSpans(trace([span({ spanId: '0000000000000001' }), span({ spanId: '0000000000000002' })], { 'pulumi.org': 'acme' }), 'fallback');
    expect(spans[0]?.resource).toBe(spans[1]?.resource);
    expect(spans[0]?.instrumentationScope).toEqual({ name: 'pulumi-update-exporter' });
    expect(spans[0]?.resource.attributes).toEqual({ 'pulumi.org': 'acme', 'service.name': 'fallback' });
    expect(toReadableSpans(trace([span()], { 'service.name': 'mine' }), 'fallback')[0]?.resource.attributes).toEqual({ 'service.name': 'mine' });
  });

  it('copies array attributes and reports nothing dropped', () => {
    const [s] = toReadableSpans(trace([span()]), 'x');
    expect(s?.attributes).toEqual({ 'pulumi.update.version': 3, 'pulumi.resource.diffs': ['a', 'b'] });
    expect([s?.droppedAttributesCount, s?.droppedEventsCount, s?.droppedLinksCount, s?.links]).toEqual([0, 0, 0, []]);
  });
});

describe('validateTrace', () => {
  const cases: [string, TraceRecord, RegExp][] = [
    ['an upper-case span id', trace([span({ spanId: 'B7AD6B7169203331' })]), /span id/],
    ['a short span id', trace([span({ spanId: 'abc' })]), /span id/],
    ['an all-zero span id', trace([span({ spanId: '0000000000000000' })]), /span id/],
    ['a span of another trace', trace([span({ traceId: 'ffffffffffffffffffffffffffffffff' })]), /belongs to trace/],
    ['a bad parent id', trace([span({ parentSpanId: 'zz' })]), /parent span id/],
    ['an end before the start', trace([span({ endTimeMs: 1 })]), /ends before it starts/],
    ['a NaN time', trace([span({ startTimeMs: Number.NaN })]), /non-finite/],
    ['an event with a bad time', trace([span({ events: [{ name: 'e', timeMs: Number.POSITIVE_INFINITY, attributes: {} }] })]), /event "e"/],
    ['a malformed trace id', { ...trace([]), traceId: 'xyz' }, /trace id/],
  ];

  it.each(cases)('rejects %s with a TRACE_EXPORT_FAILED error naming the problem', (_name, bad, problem) => {
    let caught: unknown;
    try {
      validateTrace(bad);
    } catch (err) {
      caught = err;
    }
    expect(isExporterError(caught) && caught.code).toBe('TRACE_EXPORT_FAILED');
    expect((caught as Error).message).toMatch(problem);
    expect(isExporterError(caught) && caught.retryable).toBe(false);
  });

  it('accepts a well-formed trace', () => {
    expect(() => validateTrace(trace([span(), span({ spanId: '0000000000000002', parentSpanId: 'b7ad6b7169203331' })]))).not.toThrow();
  });
});
