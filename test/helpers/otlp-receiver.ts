import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

/**
 * The OTLP messages every signal shares (common/v1/common.proto, resource/v1/resource.proto),
 * for the trace receiver here and the metrics receiver (otlp-metrics-receiver.ts).
 */
export const OTLP_COMMON_PROTO = `
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
`;

/**
 * The OTLP trace messages, field numbers as in open-telemetry/opentelemetry-proto
 * (collector/trace/v1/trace_service.proto, trace/v1/trace.proto) and the common messages
 * above. Kept inline so the receiver needs no .proto files.
 */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
${OTLP_COMMON_PROTO}
message Status {
  string message = 2;
  int32 code = 3;
}
message Event {
  fixed64 time_unix_nano = 1;
  string name = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Link {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  repeated KeyValue attributes = 4;
  uint32 dropped_attributes_count = 5;
  fixed32 flags = 6;
}
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  repeated Event events = 11;
  uint32 dropped_events_count = 12;
  repeated Link links = 13;
  uint32 dropped_links_count = 14;
  Status status = 15;
}
message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}
message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTracePartialSuccess {
  int64 rejected_spans = 1;
  string error_message = 2;
}
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
`;

const root = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: false }).root;
const RequestType = root.lookupType('otlp.ExportTraceServiceRequest');
const ResponseType = root.lookupType('otlp.ExportTraceServiceResponse');

/** OTLP SpanKind values as they appear on the wire. */
export const OTLP_SPAN_KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
/** OTLP StatusCode values as they appear on the wire. */
export const OTLP_STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface DecodedEvent {
  readonly name: string;
  readonly timeUnixNano: bigint;
  readonly attributes: Record<string, unknown>;
}

/** A span as received, the same shape for protobuf and JSON requests. */
export interface DecodedSpan {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind number (see OTLP_SPAN_KIND). */
  readonly kind: number;
  /** Exact nanoseconds. */
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  /** Strings, booleans, numbers (int64 beyond 2^53 as bigint), arrays, nested objects, Uint8Array. */
  readonly attributes: Record<string, unknown>;
  readonly events: readonly DecodedEvent[];
  /** code is an OTLP StatusCode number (see OTLP_STATUS_CODE); message '' when absent. */
  readonly status: { readonly code: number; readonly message: string };
  /** The attributes of the span's resource. */
  readonly resource: Record<string, unknown>;
  readonly scope: { readonly name: string; readonly version: string };
  readonly flags: number;
  readonly droppedAttributesCount: number;
  readonly droppedEventsCount: number;
  readonly droppedLinksCount: number;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly contentType: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body, gunzipped when it was sent with Content-Encoding: gzip. */
  readonly body: Buffer;
  /** The status the receiver answered with (0 for a request held by hangNext). */
  readonly status: number;
  /** Spans decoded from the body (also for requests that were answered with an error). */
  readonly spans: readonly DecodedSpan[];
}

/** Planned answers (failNext, rejectNext, ...) apply in the order they were planned; unplanned requests get 200. */
export interface OtlpReceiver {
  /** Full traces URL: http://127.0.0.1:PORT/v1/traces */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Spans of every accepted request (2xx without rejection), in arrival order. */
  spans(): DecodedSpan[];
  /**
   * Answers the next `count` (default 1) trace requests with this HTTP status (and a
   * Retry-After header when given). Replaces any failures still planned by an earlier call,
   * so `failNext(503, 0)` brings the collector back.
   */
  failNext(status: number, count?: number, retryAfter?: string): void;
  /** Answers 413 to every request whose body is larger than `bytes` (a proxy's body limit); Infinity lifts it. */
  refuseLargerThan(bytes: number): void;
  /** Answers `status` to every request that carries spans of `traceId`, until `forgetTrace`. Checked before planned answers. */
  failTrace(traceId: string, status: number): void;
  /** Answers 200 with a partial success rejecting every span of `traceId` in a request, until `forgetTrace`. */
  rejectTrace(traceId: string, errorMessage: string): void;
  forgetTrace(traceId: string): void;
  /** Answers the next `count` (default 1) requests with 200 and a partial success rejecting spans. */
  rejectNext(rejectedSpans: number, errorMessage: string, count?: number): void;
  /** Answers the next `count` (default 1) requests normally; for plans like "accept one, then fail". */
  acceptNext(count?: number): void;
  /** Holds the next `count` (default 1) requests without answering until close(). */
  hangNext(count?: number): void;
  /**
   * Answers the next `count` (default 1) requests with 200 headers, then a body byte every
   * 50 ms that never completes: a collector that defeats socket idle timeouts.
   */
  trickleNext(count?: number): void;
  close(): Promise<void>;
}

type Plan =
  | { kind: 'accept' }
  | { kind: 'fail'; status: number; retryAfter?: string }
  | { kind: 'reject'; rejectedSpans: number; errorMessage: string }
  | { kind: 'hang' }
  | { kind: 'trickle' };

/** A plan applied to the next `remaining` requests (run-length, so huge counts cost nothing). */
type PlannedRun = Plan & { remaining: number };

/** A real OTLP/HTTP trace receiver on 127.0.0.1 (random port), for protobuf and JSON bodies. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const accepted: DecodedSpan[] = [];
  const plans: PlannedRun[] = [];
  const plan = (p: Plan, count: number): void => {
    if (count > 0) plans.push({ ...p, remaining: count });
  };
  const nextPlan = (): Plan | undefined => {
    const head = plans[0];
    if (head === undefined) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) plans.shift();
    return head;
  };
  const hanging = new Set<ServerResponse>();
  let bodyLimit = Number.POSITIVE_INFINITY;
  const traceRules = new Map<string, Plan>();
  const ruleFor = (spans: readonly DecodedSpan[]): Plan | undefined => {
    for (const span of spans) {
      const rule = traceRules.get(span.traceId);
      if (rule === undefined) continue;
      if (rule.kind !== 'reject') return rule;
      return { ...rule, rejectedSpans: spans.filter((s) => s.traceId === span.traceId).length };
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const path = req.url ?? '';
    const isJson = contentType === 'application/json';
    let body = raw;
    const record = (status: number, spans: DecodedSpan[]): void => {
      requests.push({ method: req.method ?? '', path, contentType, headers: req.headers, body, status, spans });
    };

    if (req.method !== 'POST' || path !== '/v1/traces') {
      record(404, []);
      res.writeHead(404).end();
      return;
    }
    if (contentType !== 'application/x-protobuf' && !isJson) {
      record(415, []);
      res.writeHead(415).end();
      return;
    }
    let spans: DecodedSpan[];
    try {
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(raw);
      spans = isJson ? decodeJsonRequest(body) : decodeProtobufRequest(body);
    } catch (err) {
      record(400, []);
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`cannot decode request: ${(err as Error).message}`);
      return;
    }

    if (raw.length > bodyLimit) {
      record(413, spans);
      res.writeHead(413, { 'content-type': 'text/plain' }).end('request entity too large');
      return;
    }
    const planned = ruleFor(spans) ?? nextPlan();
    if (planned?.kind === 'hang') {
      record(0, spans);
      hanging.add(res);
      return;
    }
    if (planned?.kind === 'trickle') {
      record(200, spans);
      hanging.add(res);
      res.writeHead(200, { 'content-type': contentType });
      const timer = setInterval(() => res.write(' '), 50);
      res.once('close', () => clearInterval(timer));
      return;
    }
    if (planned?.kind === 'fail') {
      record(planned.status, spans);
      const retryAfter = planned.retryAfter === undefined ? {} : { 'retry-after': planned.retryAfter };
      res.writeHead(planned.status, { 'content-type': 'text/plain', ...retryAfter }).end(`planned failure ${planned.status}`);
      return;
    }
    const partial = planned?.kind === 'reject' ? { rejectedSpans: planned.rejectedSpans, errorMessage: planned.errorMessage } : undefined;
    record(200, spans);
    if (partial === undefined) accepted.push(...spans);
    if (isJson) {
      const payload = partial === undefined ? {} : { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    } else {
      const message = ResponseType.fromObject(partial === undefined ? {} : { partialSuccess: partial });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(ResponseType.encode(message).finish()));
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    requests,
    spans: () => [...accepted],
    failNext: (status, count = 1, retryAfter) => {
      for (let i = plans.length - 1; i >= 0; i--) if (plans[i]?.kind === 'fail') plans.splice(i, 1);
      plan({ kind: 'fail', status, ...(retryAfter === undefined ? {} : { retryAfter }) }, count);
    },
    refuseLargerThan: (bytes) => {
      bodyLimit = bytes;
    },
    failTrace: (traceId, status) => traceRules.set(traceId, { kind: 'fail', status }),
    rejectTrace: (traceId, errorMessage) => traceRules.set(traceId, { kind: 'reject', rejectedSpans: 0, errorMessage }),
    forgetTrace: (traceId) => traceRules.delete(traceId),
    rejectNext: (rejectedSpans, errorMessage, count = 1) => plan({ kind: 'reject', rejectedSpans, errorMessage }, count),
    acceptNext: (count = 1) => plan({ kind: 'accept' }, count),
    hangNext: (count = 1) => plan({ kind: 'hang' }, count),
    trickleNext: (count = 1) => plan({ kind: 'trickle' }, count),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        hanging.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// ---- shared span shape (both encodings: ids, timestamps and attributes differ) ----

interface WireSpan<KV, Id, Time> {
  traceId?: Id;
  spanId?: Id;
  parentSpanId?: Id;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: Time;
  endTimeUnixNano?: Time;
  attributes?: KV[];
  droppedAttributesCount?: number;
  events?: { timeUnixNano?: Time; name?: string; attributes?: KV[] }[];
  droppedEventsCount?: number;
  droppedLinksCount?: number;
  status?: { message?: string; code?: number };
}
interface WireRequest<KV, Id, Time> {
  resourceSpans?: {
    resource?: { attributes?: KV[] };
    scopeSpans?: { scope?: { name?: string; version?: string }; spans?: WireSpan<KV, Id, Time>[] }[];
  }[];
}
interface WireCodec<KV, Id, Time> {
  id(value: Id | undefined): string;
  nanos(value: Time | undefined): bigint;
  attributes(list: KV[] | undefined): Record<string, unknown>;
}

function decodeSpans<KV, Id, Time>(request: WireRequest<KV, Id, Time>, codec: WireCodec<KV, Id, Time>): DecodedSpan[] {
  const out: DecodedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = codec.attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const span of ss.spans ?? []) {
        out.push({
          traceId: codec.id(span.traceId),
          spanId: codec.id(span.spanId),
          parentSpanId: codec.id(span.parentSpanId),
          name: span.name ?? '',
          kind: span.kind ?? 0,
          startTimeUnixNano: codec.nanos(span.startTimeUnixNano),
          endTimeUnixNano: codec.nanos(span.endTimeUnixNano),
          attributes: codec.attributes(span.attributes),
          events: (span.events ?? []).map((e) => ({
            name: e.name ?? '',
            timeUnixNano: codec.nanos(e.timeUnixNano),
            attributes: codec.attributes(e.attributes),
          })),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          resource,
          scope,
          flags: span.flags ?? 0,
          droppedAttributesCount: span.droppedAttributesCount ?? 0,
          droppedEventsCount: span.droppedEventsCount ?? 0,
          droppedLinksCount: span.droppedLinksCount ?? 0,
        });
      }
    }
  }
  return out;
}

// ---- protobuf ----

interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
export interface PbKeyValue {
  key: string;
  value?: PbAnyValue;
}
type PbRequest = WireRequest<PbKeyValue, Uint8Array, string>;

function decodeProtobufRequest(body: Buffer): DecodedSpan[] {
  const message = RequestType.decode(body);
  // longs as decimal strings: fixed64 nanoseconds exceed 2^53 and must stay exact.
  const request = RequestType.toObject(message, { longs: String, enums: Number, defaults: false }) as PbRequest;
  return decodeSpans(request, { id: hex, nanos: (v) => BigInt(v ?? '0'), attributes: pbAttributes });
}

export function pbAttributes(list: PbKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = pbValue(kv.value);
  return out;
}

function pbValue(value: PbAnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return intValue(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(pbValue);
  if (value.kvlistValue !== undefined) return pbAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return new Uint8Array(value.bytesValue);
  return undefined;
}

function hex(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '' : Buffer.from(bytes).toString('hex');
}

// ---- JSON (OTLP/JSON: hex ids, lowerCamelCase keys, int64 as string or number) ----

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
}
export interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}
type JsonRequest = WireRequest<JsonKeyValue, string, string | number>;

function decodeJsonRequest(body: Buffer): DecodedSpan[] {
  const request = JSON.parse(body.toString('utf8')) as JsonRequest;
  return decodeSpans(request, { id: (v) => (v ?? '').toLowerCase(), nanos, attributes: jsonAttributes });
}

function nanos(value: string | number | undefined): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new Error(`timestamp ${value} is not an exact integer; OTLP/JSON senders must use strings above 2^53`);
  }
  return BigInt(value);
}

export function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = jsonValue(kv.value);
  return out;
}

function jsonValue(value: JsonAnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return intValue(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(jsonValue);
  if (value.kvlistValue !== undefined) return jsonAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return new Uint8Array(Buffer.from(value.bytesValue, 'base64'));
  return undefined;
}

/** int64 as a number when exact, else as bigint. */
function intValue(value: string | number): number | bigint {
  const big = BigInt(value);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}
