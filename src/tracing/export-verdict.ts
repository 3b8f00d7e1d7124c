import type { HttpExchange } from './exchange-recorder.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** The verdict on one OTLP request (one batch), after the SDK's own retries. */
export type BatchVerdict =
  | { readonly ok: true; readonly warning?: string }
  | {
      readonly ok: false;
      readonly retryable: boolean;
      /** A bounded word for metrics and logs. */
      readonly reason: 'timeout' | 'network' | 'http_429' | 'http_5xx' | 'http_4xx' | 'http_other' | 'rejected' | 'unknown';
      readonly status?: number;
      readonly detail: string;
    };

/** What the SDK exporter's result callback said. */
export interface SdkResult {
  readonly ok: boolean;
  readonly error?: Error;
}

export interface PartialSuccess {
  readonly rejectedSpans: number;
  readonly errorMessage: string;
}

/**
 * Combines the SDK's result with what was seen on the wire. The last exchange decides: the
 * SDK retried earlier ones itself and reports the final attempt.
 */
export function judgeBatch(result: SdkResult, exchanges: readonly HttpExchange[], protocol: OtlpProtocol): BatchVerdict {
  const last = exchanges.at(-1);
  if (result.ok) {
    const partial = last?.body === undefined ? undefined : parsePartialSuccess(last.body, protocol);
    if (partial !== undefined && partial.rejectedSpans > 0) {
      return {
        ok: false,
        // OTLP: a client must not retry a request whose spans were rejected; they would be again.
        retryable: false,
        reason: 'rejected',
        ...(last?.status === undefined ? {} : { status: last.status }),
        detail: `the collector rejected ${partial.rejectedSpans} span(s)${partial.errorMessage ? `: ${partial.errorMessage}` : ''}`,
      };
    }
    if (partial !== undefined && partial.errorMessage !== '') return { ok: true, warning: partial.errorMessage };
    return { ok: true };
  }

  const error = result.error;
  const errorStatus = numericCode(error);
  const status = errorStatus ?? (last?.status !== undefined && (last.status < 200 || last.status >= 300) ? last.status : undefined);
  if (status !== undefined) return statusVerdict(status, error);

  const message = error?.message ?? 'export failed';
  if (last?.timedOut === true || /timed? ?out/i.test(message)) {
    return { ok: false, retryable: true, reason: 'timeout', detail: message };
  }
  const networkCode = stringCode(error) ?? last?.errorCode;
  if (networkCode !== undefined) {
    return { ok: false, retryable: true, reason: 'network', detail: `${networkCode}: ${message}` };
  }
  // E.g. the SDK's concurrency limit: nothing was judged by the collector, so trying again is safe.
  return { ok: false, retryable: true, reason: 'unknown', detail: message };
}

function statusVerdict(status: number, error: Error | undefined): BatchVerdict {
  const detail = `HTTP ${status}${error?.message && !/retryable status/.test(error.message) ? ` ${error.message}` : ''}`;
  if (status === 429) return { ok: false, retryable: true, reason: 'http_429', status, detail };
  if (status >= 500 && status < 600) return { ok: false, retryable: true, reason: 'http_5xx', status, detail };
  // 400, 413 and 422 judge this request's content: sending it again cannot help. Other 4xx
  // (401, 403, 404, 407, ...) say the collector or its credentials are wrong, which an
  // operator fixes: retry those, or a misconfigured collector would lose every trace.
  if (status === 400 || status === 413 || status === 422) return { ok: false, retryable: false, reason: 'http_4xx', status, detail };
  if (status >= 400 && status < 500) return { ok: false, retryable: true, reason: 'http_4xx', status, detail };
  return { ok: false, retryable: false, reason: 'http_other', status, detail };
}

function numericCode(error: Error | undefined): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}

function stringCode(error: Error | undefined): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/**
 * Reads the partial_success of an ExportTraceServiceResponse (field 1: ExportTracePartialSuccess
 * { int64 rejected_spans = 1; string error_message = 2; }). Unreadable bodies count as plain
 * success, as the SDK treats them.
 */
export function parsePartialSuccess(body: Uint8Array, protocol: OtlpProtocol): PartialSuccess | undefined {
  if (body.length === 0) return undefined;
  try {
    return protocol === 'http/json' ? parseJsonPartialSuccess(body) : parseProtobufPartialSuccess(body);
  } catch {
    return undefined;
  }
}

function parseJsonPartialSuccess(body: Uint8Array): PartialSuccess | undefined {
  const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as { partialSuccess?: { rejectedSpans?: unknown; errorMessage?: unknown } };
  const partial = parsed.partialSuccess;
  if (partial === undefined || partial === null || typeof partial !== 'object') return undefined;
  const rejected = Number(partial.rejectedSpans ?? 0);
  return {
    rejectedSpans: Number.isFinite(rejected) ? rejected : 0,
    errorMessage: typeof partial.errorMessage === 'string' ? partial.errorMessage : '',
  };
}

function parseProtobufPartialSuccess(body: Uint8Array): PartialSuccess | undefined {
  let found: PartialSuccess | undefined;
  forEachField(body, (field, wireType, value) => {
    if (field === 1 && wireType === 2 && value instanceof Uint8Array) {
      let rejectedSpans = 0;
      let errorMessage = '';
      forEachField(value, (innerField, innerWire, innerValue) => {
        if (innerField === 1 && innerWire === 0 && typeof innerValue === 'bigint') rejectedSpans = Number(BigInt.asIntN(64, innerValue));
        if (innerField === 2 && innerWire === 2 && innerValue instanceof Uint8Array) errorMessage = Buffer.from(innerValue).toString('utf8');
      });
      found = { rejectedSpans, errorMessage };
    }
  });
  return found;
}

/** A minimal protobuf field walker: enough for the two small response messages above. */
function forEachField(bytes: Uint8Array, visit: (field: number, wireType: number, value: bigint | Uint8Array | undefined) => void): void {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const byte = bytes[pos++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (pos < bytes.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (wireType) {
      case 0:
        visit(field, wireType, varint());
        break;
      case 1:
        pos += 8;
        visit(field, wireType, undefined);
        break;
      case 2: {
        const length = Number(varint());
        if (pos + length > bytes.length) throw new Error('truncated field');
        visit(field, wireType, bytes.subarray(pos, pos + length));
        pos += length;
        break;
      }
      case 5:
        pos += 4;
        visit(field, wireType, undefined);
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }
  if (pos > bytes.length) throw new Error('truncated message');
}
