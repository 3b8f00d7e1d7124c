import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttributeValue, SpanRecord, TraceRecord } from '../../../src/domain/trace.js';
import { estimateSpanBytes, splitIntoBatches, type SpanBatch } from '../../../src/tracing/batching.js';
import { toReadableSpans } from '../../../src/tracing/readable-spans.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const RESOURCE = { 'service.name': 'pulumi', 'pulumi.org': 'acme', 'pulumi.project': 'web', 'pulumi.stack': 'prod' };

function spanRecord(i: number, overrides: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: TRACE_ID,
    spanId: (i + 1).toString(16).padStart(16, '0'),
    ...(i === 0 ? {} : { parentSpanId: '0000000000000001' }),
    name: i === 0 ? 'update web/prod' : 'create aws:s3/bucket:Bucket',
    kind: i === 0 ? 'server' : 'internal',
    startTimeMs: 1_700_000_000_000 + i,
    endTimeMs: 1_700_000_000_500 + i,
    attributes: { index: i },
    status: { code: 'unset' },
    events: [],
    ...overrides,
  };
}

function readable(spans: SpanRecord[]): ReadableSpan[] {
  const trace: TraceRecord = { traceId: TRACE_ID, resource: RESOURCE, spans, droppedSpans: 0 };
  return toReadableSpans(trace, 'pulumi');
}

function serializedSizes(spans: ReadableSpan[]): { json: number; protobuf: number } {
  const json = JsonTraceSerializer.serializeRequest(spans);
  const protobuf = ProtobufTraceSerializer.serializeRequest(spans);
  if (json === undefined || protobuf === undefined) throw new Error('the serializer produced nothing');
  return { json: json.length, protobuf: protobuf.length };
}

const ids = (batches: SpanBatch[]): string[] => batches.flatMap((b) => b.spans.map((s) => s.spanContext().spanId));

// Text that is expensive to encode: quotes, backslashes, control characters, non-ASCII, emoji.
const text = fc.string({ unit: fc.constantFrom('a', 'Z', '"', '\\', '\n', '\u0001', 'é', '中', '😀', ' '), maxLength: 60 });
const attributeValue: fc.Arbitrary<AttributeValue> = fc.oneof(
  text,
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.array(text, { maxLength: 5 }),
);
const attributes = fc.dictionary(text, attributeValue, { maxKeys: 6 });
const spanShape = fc.record({
  name: text,
  attributes,
  statusMessage: fc.option(text, { nil: undefined }),
  events: fc.array(fc.record({ name: text, attributes }), { maxLength: 3 }),
});
const spanRecords = fc.array(spanShape, { minLength: 1, maxLength: 8 }).map((shapes) =>
  shapes.map((s, i) =>
    spanRecord(i, {
      name: s.name,
      attributes: s.attributes,
      status: s.statusMessage === undefined ? { code: 'unset' } : { code: 'error', message: s.statusMessage },
      events: s.events.map((e, j) => ({ name: e.name, timeMs: 1_700_000_000_100 + j, attributes: e.attributes })),
    }),
  ),
);

describe('the size estimate', () => {
  it('is an upper bound of both the OTLP/JSON and the OTLP/protobuf request body', () => {
    fc.assert(
      fc.property(spanRecords, (records) => {
        const spans = readable(records);
        const [batch] = splitIntoBatches(spans, { maxSpans: 1_000, maxBytes: 1e12 });
        const actual = serializedSizes(spans);
        expect(batch?.spans).toHaveLength(spans.length);
        expect(batch?.estimatedBytes).toBeGreaterThanOrEqual(actual.json);
        expect(batch?.estimatedBytes).toBeGreaterThanOrEqual(actual.protobuf);
      }),
      { numRuns: 300 },
    );
  });

  it('stays close to the real JSON size for a span dominated by one big attribute', () => {
    const [span] = readable([spanRecord(0, { attributes: { 'pulumi.resource.outputs': 'x"'.repeat(50_000) } })]);
    if (span === undefined) throw new Error('no span');
    const { json } = serializedSizes([span]);
    expect(estimateSpanBytes(span)).toBeGreaterThanOrEqual(json - 1_024); // the request envelope is not in the span estimate
    expect(estimateSpanBytes(span)).toBeLessThan(json * 1.01 + 1_024);
  });
});

describe('splitIntoBatches', () => {
  it('keeps every span exactly once and in order, within both limits, filling each batch before starting the next', () => {
    fc.assert(
      fc.property(spanRecords, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1_024, max: 8_192 }), (records, maxSpans, maxBytes) => {
        const spans = readable(records);
        const batches = splitIntoBatches(spans, { maxSpans, maxBytes });
        expect(ids(batches)).toEqual(spans.map((s) => s.spanContext().spanId));
        batches.forEach((batch, i) => {
          expect(batch.spans.length).toBeGreaterThan(0);
          expect(batch.spans.length).toBeLessThanOrEqual(maxSpans);
          expect(batch.oversize).toBe(batch.estimatedBytes > maxBytes);
          if (batch.oversize) expect(batch.spans).toHaveLength(1);
          expect(batch.estimatedBytes).toBeGreaterThanOrEqual(serializedSizes(batch.spans).json);
          const next = batches[i + 1];
          if (next !== undefined && batch.spans.length < maxSpans) {
            // The next batch's first span did not fit into this one.
            const merged = splitIntoBatches([...batch.spans, next.spans[0] as ReadableSpan], { maxSpans, maxBytes: 1e12 })[0];
            expect(merged?.estimatedBytes).toBeGreaterThan(maxBytes);
          }
        });
      }),
      { numRuns: 200 },
    );
  });

  it('splits by estimated bytes when spans carry big attributes', () => {
    const spans = readable(Array.from({ length: 10 }, (_, i) => spanRecord(i, { attributes: { blob: 'b'.repeat(3_000) } })));
    const batches = splitIntoBatches(spans, { maxSpans: 512, maxBytes: 10_000 });
    expect(batches.map((b) => b.spans.length)).toEqual([2, 2, 2, 2, 2]);
    for (const b of batches) expect(b.estimatedBytes).toBeLessThanOrEqual(10_000);
  });

  it('still applies the span count limit when the bytes would allow more', () => {
    const spans = readable(Array.from({ length: 7 }, (_, i) => spanRecord(i)));
    expect(splitIntoBatches(spans, { maxSpans: 3, maxBytes: 4 * 1024 * 1024 }).map((b) => b.spans.length)).toEqual([3, 3, 1]);
  });

  it('sends a span larger than the limit alone, marked oversize, instead of dropping it', () => {
    const spans = readable([
      spanRecord(0),
      spanRecord(1, { attributes: { blob: 'b'.repeat(20_000) } }),
      spanRecord(2),
      spanRecord(3),
    ]);
    const batches = splitIntoBatches(spans, { maxSpans: 512, maxBytes: 4_096 });
    expect(batches.map((b) => [b.spans.length, b.oversize])).toEqual([
      [1, false],
      [1, true],
      [2, false],
    ]);
    expect(ids(batches)).toEqual(spans.map((s) => s.spanContext().spanId));
  });

  it('returns no batch for no spans', () => {
    expect(splitIntoBatches([], { maxSpans: 10, maxBytes: 4_096 })).toEqual([]);
  });
});
