import { RETRYABLE_STATUSES, parseRetryAfterMillis } from '../pulumi/retry-policy.js';
import type { OtlpEncoding } from './otlp-encoding.js';
import type { OtlpAttempt } from './send-otlp-request.js';

/** A bounded word for pulumi_exporter_span_export_failures_total{reason} and logs. */
export type FailureReason = 'timeout' | 'network' | 'http_429' | 'http_5xx' | 'http_4xx' | 'http_other' | 'too_large' | 'rejected' | 'shutdown';

/** The verdict on one attempt of one OTLP request (one batch). */
export type BatchVerdict =
  | { readonly ok: true; readonly warning?: string }
  | {
      readonly ok: false;
      /** Whether a later poll cycle may send the trace again (false: the collector judged the data itself). */
      readonly retryable: boolean;
      /** Whether this request may be sent again right away, within the batch's time limit (the shared retry policy). */
      readonly retryNow: boolean;
      readonly reason: FailureReason;
      readonly status?: number;
      /** Milliseconds the collector asked to wait (Retry-After), when it did. */
      readonly retryAfterMs?: number;
      readonly detail: string;
    };

/**
 * Judges one attempt. Only the collector's verdict on the spans themselves gives up on a
 * trace: a partial success rejecting spans. A 413 is `too_large` (the sink splits the batch;
 * it is final only for a single span). Every other refusal (400, 401, 403, 404, 422, 3xx, ...)
 * comes as often from a misconfigured collector or proxy as from the data, so the trace
 * stays in the backlog until the configuration is fixed.
 */
export function judgeAttempt(attempt: OtlpAttempt, encoding: OtlpEncoding, nowMs: number): BatchVerdict {
  switch (attempt.kind) {
    case 'timeout':
      return { ok: false, retryable: true, retryNow: false, reason: 'timeout', detail: 'no complete answer within traces.timeoutMillis (including retries)' };
    case 'stopped':
      return { ok: false, retryable: true, retryNow: false, reason: 'shutdown', detail: 'the span sink was shut down during the export' };
    case 'network':
      return { ok: false, retryable: true, retryNow: true, reason: 'network', detail: `${attempt.code}: ${attempt.message}` };
    case 'answered':
      return judgeAnswer(attempt, encoding, nowMs);
  }
}

function judgeAnswer(answer: Extract<OtlpAttempt, { kind: 'answered' }>, encoding: OtlpEncoding, nowMs: number): BatchVerdict {
  const status = answer.status;
  if (status >= 200 && status < 300) {
    const partial = encoding.partialSuccess(answer.body);
    if (partial !== undefined && partial.rejectedSpans > 0) {
      return {
        ok: false,
        // OTLP: a client must not retry spans the collector rejected; they would be again.
        retryable: false,
        retryNow: false,
        reason: 'rejected',
        status,
        detail: `the collector rejected ${partial.rejectedSpans} span(s)${partial.errorMessage ? `: ${partial.errorMessage}` : ''}`,
      };
    }
    if (partial !== undefined && partial.errorMessage !== '') return { ok: true, warning: partial.errorMessage };
    return { ok: true };
  }
  const detail = `HTTP ${status}`;
  const retryAfterMs = parseRetryAfterMillis(answer.retryAfter, nowMs);
  const asked = retryAfterMs === undefined ? {} : { retryAfterMs };
  if (status === 413) return { ok: false, retryable: false, retryNow: false, reason: 'too_large', status, detail: `${detail}: request too large` };
  const retryNow = RETRYABLE_STATUSES.has(status);
  if (status === 429) return { ok: false, retryable: true, retryNow, reason: 'http_429', status, detail, ...asked };
  if (status >= 500 && status < 600) return { ok: false, retryable: true, retryNow, reason: 'http_5xx', status, detail, ...asked };
  if (status >= 400 && status < 500) return { ok: false, retryable: true, retryNow: false, reason: 'http_4xx', status, detail };
  return { ok: false, retryable: true, retryNow: false, reason: 'http_other', status, detail: `${detail} (redirects are not followed)` };
}
