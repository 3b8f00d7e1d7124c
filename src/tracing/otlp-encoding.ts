import { JsonTraceSerializer, ProtobufTraceSerializer, type ISerializer, type IExportTraceServiceResponse } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** What a 2xx answer's ExportTracePartialSuccess said. */
export interface PartialSuccess {
  readonly rejectedSpans: number;
  readonly errorMessage: string;
}

/** How requests are written and answers read for one OTLP/HTTP protocol. */
export interface OtlpEncoding {
  readonly contentType: string;
  /** The exact request body for these spans (ExportTraceServiceRequest). */
  serialize(spans: ReadableSpan[]): Uint8Array;
  /** The partial success of a 2xx body; undefined when there is none or it is unreadable (plain success, as the SDK treats it). */
  partialSuccess(body: Uint8Array): PartialSuccess | undefined;
}

/** The OTLP transformer's public serializers for `protocol`. */
export function otlpEncoding(protocol: OtlpProtocol): OtlpEncoding {
  const serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> =
    protocol === 'http/json' ? JsonTraceSerializer : ProtobufTraceSerializer;
  return {
    contentType: protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
    serialize(spans) {
      const body = serializer.serializeRequest(spans);
      if (body === undefined) throw new Error(`the ${protocol} serializer produced no request body`);
      return body;
    },
    partialSuccess(body) {
      if (body.length === 0) return undefined;
      let response: IExportTraceServiceResponse;
      try {
        response = serializer.deserializeResponse(body);
      } catch {
        return undefined;
      }
      const partial = response.partialSuccess;
      if (partial === undefined || partial === null || typeof partial !== 'object') return undefined;
      // OTLP/JSON writes int64 as a string.
      const rejected = Number(partial.rejectedSpans ?? 0);
      return {
        rejectedSpans: Number.isFinite(rejected) ? rejected : 0,
        errorMessage: typeof partial.errorMessage === 'string' ? partial.errorMessage : '',
      };
    },
  };
}
