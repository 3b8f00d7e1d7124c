/** Plain span records produced by src/conversion/ and sent by src/tracing/. No OpenTelemetry types here. */

export type AttributeValue = string | number | boolean | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue>>;

export interface SpanEventRecord {
  readonly name: string;
  /** Unix milliseconds. */
  readonly timeMs: number;
  readonly attributes: Attributes;
}

export interface SpanRecord {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** Undefined for the root span. */
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: 'server' | 'internal';
  /** Unix milliseconds. */
  readonly startTimeMs: number;
  /** Unix milliseconds, >= startTimeMs. */
  readonly endTimeMs: number;
  readonly attributes: Attributes;
  readonly status: { readonly code: 'unset' | 'ok' | 'error'; readonly message?: string };
  readonly events: readonly SpanEventRecord[];
}

export interface TraceRecord {
  readonly traceId: string;
  /** OpenTelemetry resource attributes (service.name, pulumi.org, ...). */
  readonly resource: Readonly<Record<string, string>>;
  /** The root span first, then resource-step spans in the order of their pre events. */
  readonly spans: readonly SpanRecord[];
  /** Spans cut by the per-trace span cap. */
  readonly droppedSpans: number;
}

/** One resource step as seen in the engine events; feeds the per-operation metrics. */
export interface ResourceOperation {
  readonly urn: string;
  readonly op: string;
  readonly resourceType: string;
  readonly result: 'succeeded' | 'failed' | 'interrupted';
  /** Seconds from the pre event to its terminal event (0 when interrupted). */
  readonly durationSeconds: number;
}

export interface PolicyViolation {
  readonly policyPack: string;
  readonly policy: string;
  readonly enforcementLevel: string;
}
