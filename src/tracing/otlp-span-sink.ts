import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Config } from '../config/schema.js';
import type { TraceRecord } from '../domain/trace.js';
import { ExporterError, isExporterError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { planRetry } from '../pulumi/retry-policy.js';
import { redact } from '../secrets.js';
import { VERSION } from '../version.js';
import { chunkBySpans, splitInHalf } from './batching.js';
import { judgeAttempt, type BatchVerdict } from './export-verdict.js';
import { otlpEncoding, type OtlpEncoding } from './otlp-encoding.js';
import { toReadableSpans } from './readable-spans.js';
import { sendOtlpRequest } from './send-otlp-request.js';
import { noopSinkObserver, type ExportOutcome, type SinkObserver, type SpanSink } from './span-sink.js';

export interface OtlpSpanSinkDeps {
  readonly logger: Logger;
  readonly observer?: SinkObserver;
  /** Jitter source of the retry backoff; Math.random by default. */
  readonly random?: () => number;
}

const gzipAsync = promisify(gzip);

/** Backoff of the retries within one batch (OTLP exporters' usual 1 s start, 5 s cap). */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5_000;

/**
 * Sends the traces of each export() call over OTLP/HTTP (protobuf or JSON, serialized by the OpenTelemetry OTLP
 * transformer, optionally gzipped, sent with fetch), in batches of at most `batchMaxSpans` spans and
 * `batchMaxBytes` bytes, in span order, one request at a time. Each batch is bounded by
 * `timeoutMillis` including its retries (429, 5xx and network errors, with the Pulumi
 * client's retry policy). A 413 halves the batch and sends the halves.
 */
export class OtlpSpanSink implements SpanSink {
  readonly enabled = true;
  private readonly encoding: OtlpEncoding;
  private readonly url: string;
  private readonly headers: Headers;
  private readonly logger: Logger;
  private readonly observer: SinkObserver;
  private readonly random: () => number;
  private readonly endpointForLogs: string;
  /** Cuts in-flight requests and retry waits on shutdown. */
  private readonly stop = new AbortController();
  /** Serializes exports: one request at a time, as the SDK's batch span processor does. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Below the smallest body the collector refused with 413, so later batches are cut small enough up front. */
  private refusedBytes = Number.POSITIVE_INFINITY;
  private closed = false;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: Config['traces'],
    deps: OtlpSpanSinkDeps,
  ) {
    this.logger = deps.logger;
    this.observer = deps.observer ?? noopSinkObserver;
    this.random = deps.random ?? Math.random;
    this.endpointForLogs = safeEndpoint(config.endpoint);
    this.encoding = otlpEncoding(config.protocol);
    const { url, authorization } = splitUserInfo(config.endpoint);
    this.url = url;
    this.headers = new Headers(config.headers);
    if (authorization !== undefined && !this.headers.has('authorization')) this.headers.set('authorization', authorization);
    this.headers.set('content-type', this.encoding.contentType);
    if (config.compression === 'gzip') this.headers.set('content-encoding', 'gzip');
    this.headers.set('user-agent', `pulumi-update-exporter/${VERSION}`);
  }

  export(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    const run = this.chain.then(() => this.exportNow(traces));
    this.chain = run.catch(() => undefined);
    return run.catch((err: unknown) => this.failed(traces, 'unknown', true, `unexpected error: ${errorMessage(err)}`, err));
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.shutdownNow();
    return this.stopping;
  }

  private async exportNow(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    if (this.closed) return this.failed(traces, 'shutdown', true, 'the span sink is shut down');
    const spans: ReadableSpan[] = [];
    try {
      for (const trace of traces) for (const span of toReadableSpans(trace, this.config.serviceName)) spans.push(span);
    } catch (err) {
      if (isExporterError(err)) return this.outcomeOf(traces, 'invalid', false, err);
      throw err;
    }
    // A stack, so halves of a split batch go out before the batches after it.
    const pending = chunkBySpans(spans, this.config.batchMaxSpans).reverse();
    let sent = 0;
    while (pending.length > 0) {
      const batch = pending.pop() as ReadableSpan[];
      const body = this.encoding.serialize(batch);
      const limit = Math.min(this.config.batchMaxBytes, this.refusedBytes - 1);
      if (body.length > limit && batch.length > 1) {
        pending.push(...splitInHalf(batch).reverse());
        continue;
      }
      if (body.length > this.config.batchMaxBytes) {
        // Dropping it would lose the span silently; a collector with a lower limit refuses it visibly.
        this.logger.warn(
          { traceId: batch[0]?.spanContext().traceId, spanId: batch[0]?.spanContext().spanId, bytes: body.length, batchMaxBytes: this.config.batchMaxBytes },
          'span is larger than traces.batchMaxBytes; sending it alone in its own request',
        );
      }
      const verdict = await this.sendBatch(body);
      if (!verdict.ok && verdict.reason === 'too_large' && batch.length > 1) {
        this.refusedBytes = Math.min(this.refusedBytes, body.length);
        this.logger.warn(
          { traceId: batch[0]?.spanContext().traceId, bytes: body.length, spans: batch.length, batchMaxBytes: this.config.batchMaxBytes },
          'the collector refused a request as too large (HTTP 413); splitting it and sending smaller requests from now on (lower traces.batchMaxBytes below this size)',
        );
        pending.push(...splitInHalf(batch).reverse());
        continue;
      }
      if (!verdict.ok) {
        const position = `batch ${sent + 1}/${sent + 1 + pending.length}`;
        return this.failed(traces, verdict.reason, verdict.retryable, `${position} (${batch.length} spans): ${verdict.detail}`, undefined, verdict.status);
      }
      if (verdict.warning !== undefined) {
        this.logger.warn({ traceId: batch[0]?.spanContext().traceId, warning: redact(verdict.warning) }, 'collector accepted spans with a warning');
      }
      sent += 1;
      this.notify(() => this.observer.spansExported(batch.length));
    }
    this.logger.debug({ traces: traces.length, traceId: traces[0]?.traceId, spans: spans.length, batches: sent }, 'traces exported');
    return { code: 'success', spans: spans.length };
  }

  /** One request body, retried within `timeoutMillis` while the answer says it may be. */
  private async sendBatch(serialized: Uint8Array): Promise<BatchVerdict> {
    const timeoutMs = this.config.timeoutMillis;
    const deadline = AbortSignal.timeout(timeoutMs);
    const endsAt = performance.now() + timeoutMs;
    const body = this.config.compression === 'gzip' ? await gzipAsync(serialized) : serialized;
    const request = { url: this.url, headers: this.headers, body };
    for (let retry = 1; ; retry += 1) {
      const verdict = judgeAttempt(await sendOtlpRequest(request, deadline, this.stop.signal), this.encoding, Date.now());
      if (verdict.ok || !verdict.retryNow) return verdict;
      const plan = planRetry(retry, verdict.retryAfterMs, RETRY_BASE_MS, RETRY_MAX_MS, this.random);
      if (plan.kind === 'defer') {
        return { ...verdict, detail: `${verdict.detail}; the collector asked to wait ${Math.ceil(plan.retryAfterMs / 1000)} s (Retry-After)` };
      }
      if (performance.now() + plan.delayMs >= endsAt) return verdict;
      try {
        await sleep(plan.delayMs, undefined, { signal: this.stop.signal });
      } catch {
        return judgeAttempt({ kind: 'stopped' }, this.encoding, Date.now());
      }
    }
  }

  private async shutdownNow(): Promise<void> {
    this.closed = true;
    // The export in flight may finish within its own bound; then whatever is left is cut.
    const grace = timer(this.config.timeoutMillis);
    try {
      await Promise.race([this.chain, grace.promise]);
    } finally {
      grace.cancel();
      this.stop.abort();
    }
    await this.chain;
  }

  private failed(
    traces: readonly TraceRecord[],
    reason: string,
    retryable: boolean,
    detail: string,
    cause?: unknown,
    status?: number,
  ): ExportOutcome {
    const error = new ExporterError('TRACE_EXPORT_FAILED', redact(`OTLP export of ${describeTraces(traces)} to ${this.endpointForLogs} failed (${reason}): ${detail}`), {
      ...(cause === undefined ? {} : { cause }),
      retryable,
      details: { reason, endpoint: this.endpointForLogs, traceId: traces[0]?.traceId, traces: traces.length, status },
    });
    return this.outcomeOf(traces, reason, retryable, error);
  }

  private outcomeOf(traces: readonly TraceRecord[], reason: string, retryable: boolean, error: Error): ExportOutcome {
    this.notify(() => this.observer.exportFailed(reason));
    // The caller (sync) logs the failure with its update context; this is the transport view.
    this.logger.debug({ traceId: traces[0]?.traceId, traces: traces.length, reason, retryable, err: error }, 'trace export failed');
    return { code: 'failed', retryable, reason, error };
  }

  /** A broken metrics hook must neither turn an accepted trace into a failure nor make export() reject. */
  private notify(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.warn({ err }, 'span sink observer failed');
    }
  }
}

function timer(ms: number): { promise: Promise<void>; cancel(): void } {
  let handle: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    handle = setTimeout(resolve, ms);
    // A pending export holds its own request open; the grace period alone must not hold the process.
    handle.unref();
  });
  return { promise, cancel: () => clearTimeout(handle) };
}

/**
 * fetch refuses URLs with user info; `http://user:pass@collector/` keeps working as Basic
 * authentication, as it did with Node's http client.
 */
function splitUserInfo(endpoint: string): { url: string; authorization?: string } {
  const url = new URL(endpoint);
  if (url.username === '' && url.password === '') return { url: endpoint };
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  url.username = '';
  url.password = '';
  return { url: url.href, authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

/** The endpoint without credentials or query, for logs and error messages. */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

/** "trace <id>", or "3 traces (<id>, ...)" for a request carrying several updates. */
function describeTraces(traces: readonly TraceRecord[]): string {
  if (traces.length === 1) return `trace ${traces[0]?.traceId}`;
  const ids = traces.slice(0, 3).map((t) => t.traceId);
  return `${traces.length} traces (${ids.join(', ')}${traces.length > ids.length ? ', ...' : ''})`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
