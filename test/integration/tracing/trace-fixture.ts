import type { SpanRecord, TraceRecord } from '../../../src/domain/trace.js';
import { OTLP_SPAN_KIND, OTLP_STATUS_CODE, type DecodedSpan } from '../../helpers/otlp-receiver.js';

export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const ROOT_ID = '00f067aa0ba902b7';
const COMPONENT_ID = '1a2b3c4d5e6f7081';
const BUCKET_ID = '9f8e7d6c5b4a3921';
const ROLE_ID = 'aa00bb11cc22dd33';

/** A hand-built update trace: root, a component with two children, events, an error, array attributes. */
export function sampleTrace(): TraceRecord {
  return {
    traceId: TRACE_ID,
    resource: { 'service.name': 'pulumi', 'pulumi.org': 'acme', 'pulumi.project': 'web', 'pulumi.stack': 'prod' },
    droppedSpans: 0,
    spans: [
      {
        traceId: TRACE_ID,
        spanId: ROOT_ID,
        name: 'update web/prod',
        kind: 'server',
        startTimeMs: 1_700_000_000_123,
        endTimeMs: 1_700_000_095_987,
        attributes: {
          'cicd.pipeline.name': 'web/prod',
          'cicd.pipeline.run.id': '9f0c6a3e-1111-2222-3333-444455556666',
          'cicd.pipeline.result': 'failure',
          'pulumi.update.version': 42,
          'pulumi.update.resource_changes.create': 2,
          'pulumi.update.ratio': 0.75,
          'pulumi.update.dry_run': false,
        },
        status: { code: 'error', message: 'update failed' },
        events: [
          {
            name: 'diagnostic',
            timeMs: 1_700_000_090_001,
            attributes: { severity: 'warning', message: 'deprecated property' },
          },
        ],
      },
      {
        traceId: TRACE_ID,
        spanId: COMPONENT_ID,
        parentSpanId: ROOT_ID,
        name: 'create my:component:Site',
        kind: 'internal',
        startTimeMs: 1_700_000_001_000,
        endTimeMs: 1_700_000_060_000,
        attributes: { 'pulumi.resource.urn': 'urn:pulumi:prod::web::my:component:Site::site', 'pulumi.resource.custom': false },
        status: { code: 'unset' },
        events: [],
      },
      {
        traceId: TRACE_ID,
        spanId: BUCKET_ID,
        parentSpanId: COMPONENT_ID,
        name: 'update aws:s3/bucket:Bucket',
        kind: 'internal',
        startTimeMs: 1_700_000_002_000,
        endTimeMs: 1_700_000_010_000,
        attributes: {
          'pulumi.resource.type': 'aws:s3/bucket:Bucket',
          'pulumi.resource.diffs': ['tags', 'versioning'],
          'pulumi.resource.replace_keys': [],
        },
        status: { code: 'ok' },
        events: [],
      },
      {
        traceId: TRACE_ID,
        spanId: ROLE_ID,
        parentSpanId: COMPONENT_ID,
        name: 'create aws:iam/role:Role',
        kind: 'internal',
        startTimeMs: 1_700_000_003_500,
        endTimeMs: 1_700_000_059_999,
        attributes: { 'pulumi.resource.type': 'aws:iam/role:Role' },
        status: { code: 'error', message: 'AccessDenied: not authorized' },
        events: [
          {
            name: 'policy_violation',
            timeMs: 1_700_000_059_000,
            attributes: { 'pulumi.policy.pack': 'baseline', 'pulumi.policy.name': 'no-admin', 'pulumi.policy.enforcement_level': 'mandatory' },
          },
          { name: 'diagnostic', timeMs: 1_700_000_059_999, attributes: { severity: 'error', message: 'AccessDenied' } },
        ],
      },
    ],
  };
}

/** A trace of `count` spans: a root and count-1 children, all distinct ids. */
export function largeTrace(count: number): TraceRecord {
  const spans: SpanRecord[] = [];
  for (let i = 0; i < count; i++) {
    spans.push({
      traceId: TRACE_ID,
      spanId: (i + 1).toString(16).padStart(16, '0'),
      ...(i === 0 ? {} : { parentSpanId: (1).toString(16).padStart(16, '0') }),
      name: i === 0 ? 'update big/stack' : `create test:index:Thing`,
      kind: i === 0 ? 'server' : 'internal',
      startTimeMs: 1_700_000_000_000 + i,
      endTimeMs: 1_700_000_000_000 + i + 500,
      attributes: { index: i },
      status: { code: 'unset' },
      events: [],
    });
  }
  return { traceId: TRACE_ID, resource: { 'service.name': 'pulumi' }, droppedSpans: 0, spans };
}

/** A trace of `count` spans, each carrying a string attribute of `blobLength` characters. */
export function bulkyTrace(count: number, blobLength: number): TraceRecord {
  const base = largeTrace(count);
  return {
    ...base,
    spans: base.spans.map((span, i) => ({
      ...span,
      attributes: { ...span.attributes, 'pulumi.test.blob': String.fromCharCode(97 + (i % 26)).repeat(blobLength) },
    })),
  };
}

/** What a record must look like once decoded from the wire, written from the OTLP spec. */
export function expectedOnWire(trace: TraceRecord): Omit<DecodedSpan, 'flags' | 'scope'>[] {
  const nanos = (ms: number): bigint => BigInt(ms) * 1_000_000n;
  return trace.spans.map((span) => ({
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId ?? '',
    name: span.name,
    kind: span.kind === 'server' ? OTLP_SPAN_KIND.SERVER : OTLP_SPAN_KIND.INTERNAL,
    startTimeUnixNano: nanos(span.startTimeMs),
    endTimeUnixNano: nanos(span.endTimeMs),
    attributes: Object.fromEntries(Object.entries(span.attributes).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])),
    events: span.events.map((e) => ({ name: e.name, timeUnixNano: nanos(e.timeMs), attributes: { ...e.attributes } })),
    status: {
      code: span.status.code === 'error' ? OTLP_STATUS_CODE.ERROR : span.status.code === 'ok' ? OTLP_STATUS_CODE.OK : OTLP_STATUS_CODE.UNSET,
      message: span.status.message ?? '',
    },
    resource: { ...trace.resource },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  }));
}
