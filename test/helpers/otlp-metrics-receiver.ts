import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { jsonAttributes, OTLP_COMMON_PROTO, pbAttributes, readBody, type JsonKeyValue, type PbKeyValue } from './otlp-receiver.js';

/**
 * The OTLP metric messages, field numbers as in open-telemetry/opentelemetry-proto
 * (collector/metrics/v1/metrics_service.proto, metrics/v1/metrics.proto). Exemplars and the
 * exponential histogram and summary types are left out: the exporter does not send them, and
 * the decoder skips unknown fields.
 */
const OTLP_METRICS_PROTO = `
syntax = "proto3";
package otlp;
${OTLP_COMMON_PROTO}
enum AggregationTemporality {
  AGGREGATION_TEMPORALITY_UNSPECIFIED = 0;
  AGGREGATION_TEMPORALITY_DELTA = 1;
  AGGREGATION_TEMPORALITY_CUMULATIVE = 2;
}
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  oneof value {
    double as_double = 4;
    sfixed64 as_int = 6;
  }
  uint32 flags = 8;
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  fixed64 count = 4;
  optional double sum = 5;
  repeated fixed64 bucket_counts = 6;
  repeated double explicit_bounds = 7;
  uint32 flags = 10;
  optional double min = 11;
  optional double max = 12;
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum {
  repeated NumberDataPoint data_points = 1;
  AggregationTemporality aggregation_temporality = 2;
  bool is_monotonic = 3;
}
message Histogram {
  repeated HistogramDataPoint data_points = 1;
  AggregationTemporality aggregation_temporality = 2;
}
message Metric {
  string name = 1;
  string description = 2;
  string unit = 3;
  oneof data {
    Gauge gauge = 5;
    Sum sum = 7;
    Histogram histogram = 9;
  }
}
message ScopeMetrics {
  InstrumentationScope scope = 1;
  repeated Metric metrics = 2;
  string schema_url = 3;
}
message ResourceMetrics {
  Resource resource = 1;
  repeated ScopeMetrics scope_metrics = 2;
  string schema_url = 3;
}
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ExportMetricsPartialSuccess {
  int64 rejected_data_points = 1;
  string error_message = 2;
}
message ExportMetricsServiceResponse { ExportMetricsPartialSuccess partial_success = 1; }
`;

const root = protobuf.parse(OTLP_METRICS_PROTO, { keepCase: false }).root;
const RequestType = root.lookupType('otlp.ExportMetricsServiceRequest');
const ResponseType = root.lookupType('otlp.ExportMetricsServiceResponse');

/** OTLP AggregationTemporality values as they appear on the wire. */
export const OTLP_TEMPORALITY = { UNSPECIFIED: 0, DELTA: 1, CUMULATIVE: 2 } as const;

/** One data point as received, with its metric's fields; the same shape for protobuf and JSON. */
export interface DecodedPoint {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  readonly type: 'gauge' | 'sum' | 'histogram';
  /** OTLP AggregationTemporality number (0 for gauges). */
  readonly temporality: number;
  readonly monotonic: boolean;
  readonly attributes: Record<string, unknown>;
  readonly startTimeUnixNano: bigint;
  readonly timeUnixNano: bigint;
  /** Gauge and sum points. */
  readonly value?: number;
  /** Histogram points. */
  readonly count?: number;
  readonly sum?: number;
  readonly explicitBounds?: readonly number[];
  readonly bucketCounts?: readonly number[];
  readonly resource: Record<string, unknown>;
  readonly scope: { readonly name: string; readonly version: string };
}

export interface ReceivedMetricsRequest {
  readonly contentType: string;
  /** The Content-Encoding header ('' without one). */
  readonly contentEncoding: string;
  readonly status: number;
  readonly points: readonly DecodedPoint[];
}

export interface OtlpMetricsReceiver {
  /** Full metrics URL: http://127.0.0.1:PORT/v1/metrics */
  readonly url: string;
  readonly requests: ReceivedMetricsRequest[];
  /** The points of the newest accepted request (each push carries every series in full). */
  latest(): readonly DecodedPoint[];
  /** Answers the next `count` requests with this HTTP status. */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

/** A real OTLP/HTTP metrics receiver on 127.0.0.1 (a random port unless one is given), for protobuf and JSON bodies. */
export async function startOtlpMetricsReceiver(port = 0): Promise<OtlpMetricsReceiver> {
  const requests: ReceivedMetricsRequest[] = [];
  let latest: DecodedPoint[] = [];
  let failures: { status: number; remaining: number } | undefined;

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const isJson = contentType === 'application/json';
    const contentEncoding = req.headers['content-encoding'] ?? '';
    if (req.method !== 'POST' || req.url !== '/v1/metrics' || (!isJson && contentType !== 'application/x-protobuf')) {
      requests.push({ contentType, contentEncoding, status: 404, points: [] });
      res.writeHead(404).end();
      return;
    }
    let points: DecodedPoint[];
    try {
      const body = contentEncoding === 'gzip' ? gunzipSync(raw) : raw;
      points = isJson ? decodeJson(body) : decodeProtobuf(body);
    } catch (err) {
      requests.push({ contentType, contentEncoding, status: 400, points: [] });
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`cannot decode request: ${(err as Error).message}`);
      return;
    }
    if (failures !== undefined && failures.remaining > 0) {
      failures.remaining -= 1;
      requests.push({ contentType, contentEncoding, status: failures.status, points });
      res.writeHead(failures.status, { 'content-type': 'text/plain' }).end(`planned failure ${failures.status}`);
      return;
    }
    requests.push({ contentType, contentEncoding, status: 200, points });
    latest = points;
    if (isJson) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(ResponseType.encode(ResponseType.fromObject({})).finish()));
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${address.port}/v1/metrics`,
    requests,
    latest: () => latest,
    failNext: (status, count = 1) => {
      failures = { status, remaining: count };
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// Both encodings share the message shape; int64 fields arrive as strings (protobuf longs as
// String, OTLP/JSON as strings or numbers) and are turned into numbers or bigints here.
type Int = string | number;
interface WirePoint<KV> {
  attributes?: KV[];
  startTimeUnixNano?: Int;
  timeUnixNano?: Int;
  asDouble?: number | string;
  asInt?: Int;
  count?: Int;
  sum?: number | string;
  bucketCounts?: Int[];
  explicitBounds?: (number | string)[];
}
interface WireRequest<KV> {
  resourceMetrics?: {
    resource?: { attributes?: KV[] };
    scopeMetrics?: {
      scope?: { name?: string; version?: string };
      metrics?: {
        name?: string;
        description?: string;
        unit?: string;
        gauge?: { dataPoints?: WirePoint<KV>[] };
        sum?: { dataPoints?: WirePoint<KV>[]; aggregationTemporality?: number | string; isMonotonic?: boolean };
        histogram?: { dataPoints?: WirePoint<KV>[]; aggregationTemporality?: number | string };
      }[];
    }[];
  }[];
}

function decodeProtobuf(body: Buffer): DecodedPoint[] {
  const message = RequestType.decode(body);
  const request = RequestType.toObject(message, { longs: String, enums: Number, defaults: false }) as WireRequest<PbKeyValue>;
  return decodePoints(request, pbAttributes);
}

function decodeJson(body: Buffer): DecodedPoint[] {
  return decodePoints(JSON.parse(body.toString('utf8')) as WireRequest<JsonKeyValue>, jsonAttributes);
}

const TEMPORALITY_NAMES: Record<string, number> = {
  AGGREGATION_TEMPORALITY_UNSPECIFIED: 0,
  AGGREGATION_TEMPORALITY_DELTA: 1,
  AGGREGATION_TEMPORALITY_CUMULATIVE: 2,
};

function decodePoints<KV>(request: WireRequest<KV>, attributes: (list: KV[] | undefined) => Record<string, unknown>): DecodedPoint[] {
  const out: DecodedPoint[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = attributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = { name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' };
      for (const m of sm.metrics ?? []) {
        const type = m.sum ? 'sum' : m.histogram ? 'histogram' : 'gauge';
        const data = m.sum ?? m.histogram ?? m.gauge;
        const temporalityRaw = m.sum?.aggregationTemporality ?? m.histogram?.aggregationTemporality ?? 0;
        const temporality = typeof temporalityRaw === 'string' ? (TEMPORALITY_NAMES[temporalityRaw] ?? Number(temporalityRaw)) : temporalityRaw;
        for (const p of data?.dataPoints ?? []) {
          const base = {
            name: m.name ?? '',
            description: m.description ?? '',
            unit: m.unit ?? '',
            type,
            temporality,
            monotonic: m.sum?.isMonotonic ?? false,
            attributes: attributes(p.attributes),
            startTimeUnixNano: BigInt(p.startTimeUnixNano ?? 0),
            timeUnixNano: BigInt(p.timeUnixNano ?? 0),
            resource,
            scope,
          } as const;
          if (type === 'histogram') {
            out.push({
              ...base,
              count: Number(p.count ?? 0),
              ...(p.sum === undefined ? {} : { sum: Number(p.sum) }),
              explicitBounds: (p.explicitBounds ?? []).map(Number),
              bucketCounts: (p.bucketCounts ?? []).map(Number),
            });
          } else {
            out.push({ ...base, value: p.asDouble !== undefined ? Number(p.asDouble) : Number(p.asInt ?? 0) });
          }
        }
      }
    }
  }
  return out;
}
