import { ExporterError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { redact, registerSecret } from '../secrets.js';
import { AdaptiveLimiter, type Permit } from './adaptive-limiter.js';
import type { ApiEndpoint, ApiObserver, RetryReason } from './api-observer.js';
import { RETRYABLE_STATUSES, parseRetryAfterMillis, planRetry } from './retry-policy.js';
import { wireErrorResponse } from './wire-schema.js';

export interface ApiTransportOptions {
  readonly baseUrl: string;
  readonly accessToken: string;
  readonly userAgent: string;
  readonly requestTimeoutMillis: number;
  readonly maxAttempts: number;
  readonly retryBaseDelayMillis: number;
  readonly retryMaxDelayMillis: number;
  /** Optional hard cap; 0 = only the adaptive limit. */
  readonly requestsPerSecond: number;
  /** Where the adaptive concurrency limit starts and its ceiling. */
  readonly maxConcurrentRequests: number;
  /** A (decoded) response body larger than this fails the call with API_RESPONSE_TOO_LARGE. */
  readonly maxResponseBytes: number;
  readonly observer: ApiObserver;
  readonly logger: Logger;
  /** Rejects (with anything) when `signal` aborts before `ms` have passed. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly now: () => number;
  readonly random: () => number;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

export interface GetRequest<T> {
  readonly endpoint: ApiEndpoint;
  /** e.g. `/api/stacks/{org}/{project}/{stack}/updates`: named in errors and logs instead of the URL. */
  readonly pathTemplate: string;
  /** The path with every name already URL-encoded. */
  readonly path: string;
  readonly query?: ReadonlyArray<readonly [string, string]>;
  /** What the request is about (`org/project/stack`), for messages. */
  readonly subject?: string;
  readonly parse: (body: unknown) => ParseResult<T>;
  /** Aborts the request and every wait of it (API_ABORTED). */
  readonly signal?: AbortSignal;
}

type Attempt<T> =
  | { readonly kind: 'ok'; readonly status: number; readonly value: T }
  | {
      readonly kind: 'http';
      readonly status: number;
      readonly serverMessage?: string;
      readonly requestId?: string;
      readonly retryAfterMs?: number;
    }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'network'; readonly detail: string; readonly cause: unknown }
  | { readonly kind: 'malformed'; readonly status: number; readonly problem: string; readonly requestId?: string }
  | { readonly kind: 'too_large'; readonly status: number; readonly requestId?: string }
  /** A redirect to another origin (or a redirect chain too long), not followed. */
  | { readonly kind: 'redirect'; readonly status: number; readonly target: string };

/** Redirects followed within the backend's own origin. */
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

const MAX_SERVER_MESSAGE = 500;

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

/** The body as text, or undefined once it grows past `maxBytes` (the rest is not read). */
async function readCapped(res: Response, maxBytes: number): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    return declared > maxBytes ? undefined : '';
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early cancels the stream, which closes the connection.
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** `location` resolved against `base`, if it parses. */
function resolveLocation(location: string | null, base: string): URL | undefined {
  if (location === null) return undefined;
  try {
    return new URL(location, base);
  } catch {
    return undefined;
  }
}

/** `endpoint (GET /path/template) for subject`, for messages. */
function describeRequest(req: GetRequest<unknown>): string {
  return `${req.endpoint} (GET ${req.pathTemplate})${req.subject === undefined ? '' : ` for ${req.subject}`}`;
}

function networkDetail(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const c = cause as { code?: unknown; message?: unknown } | undefined;
  if (c && typeof c.code === 'string') return c.code;
  if (c && typeof c.message === 'string' && c.message !== '') return c.message;
  return err instanceof Error ? err.message : String(err);
}

function retryReason(a: Attempt<unknown>): RetryReason | undefined {
  switch (a.kind) {
    case 'timeout':
      return 'timeout';
    case 'network':
      return 'network';
    case 'http':
      if (!RETRYABLE_STATUSES.has(a.status)) return undefined;
      return a.status === 429 ? '429' : '5xx';
    default:
      return undefined;
  }
}

/**
 * GET + JSON over global fetch with everything the Pulumi client needs on every call:
 * auth and content headers, a per-attempt timeout, bounded retries with jittered
 * exponential backoff that honours Retry-After (never retrying earlier than asked: a
 * longer wait than `retryMaxDelayMillis` fails the call so the next poll cycle retries),
 * one client-wide adaptive limiter (AIMD on 429 / Retry-After, optional hard rate cap),
 * an abort signal reaching every request and wait, coded errors that never carry the
 * token, and observer/log reports.
 */
export class ApiTransport {
  private readonly baseUrl: string;
  private readonly origin: string;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly limiter: AdaptiveLimiter;
  private readonly seenWarnings = new Set<string>();

  constructor(private readonly o: ApiTransportOptions) {
    registerSecret(o.accessToken);
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.origin = new URL(o.baseUrl).origin;
    this.headers = {
      Authorization: `token ${o.accessToken}`,
      Accept: 'application/vnd.pulumi+8',
      'Accept-Encoding': 'gzip',
      'Content-Type': 'application/json',
      'User-Agent': o.userAgent,
    };
    this.limiter = new AdaptiveLimiter({
      maxConcurrency: o.maxConcurrentRequests,
      requestsPerSecond: o.requestsPerSecond,
      maxPauseMs: o.retryMaxDelayMillis,
      now: o.now,
      sleep: o.sleep,
    });
  }

  async get<T>(req: GetRequest<T>): Promise<T> {
    const url = this.urlOf(req);
    for (let attempt = 1; ; attempt += 1) {
      const result = await this.limited(req, url, attempt);
      if (result.kind === 'ok') return result.value;
      const reason = retryReason(result);
      if (reason === undefined || attempt >= this.o.maxAttempts) throw this.finalError(req, result, attempt);
      const retryAfterMs = result.kind === 'http' ? result.retryAfterMs : undefined;
      const plan = planRetry(attempt, retryAfterMs, this.o.retryBaseDelayMillis, this.o.retryMaxDelayMillis, this.o.random);
      const context = {
        endpoint: req.endpoint,
        path: req.pathTemplate,
        ...(req.subject === undefined ? {} : { subject: req.subject }),
        status: result.kind === 'http' ? result.status : result.kind,
        attempt,
      };
      if (plan.kind === 'defer') {
        // Self-healing (the next cycle retries), so WARN; no retry() report as none happens.
        this.o.logger.warn(
          {
            ...context,
            retryAfterMs: plan.retryAfterMs,
            retryMaxDelayMillis: this.o.retryMaxDelayMillis,
          },
          'Pulumi Cloud asked to wait longer than a retry may; the next poll cycle retries',
        );
        throw this.finalError(req, result, attempt, true);
      }
      const delayMs = plan.delayMs;
      this.o.observer.retry(req.endpoint, reason);
      this.o.logger.debug(
        {
          ...context,
          maxAttempts: this.o.maxAttempts,
          delayMs,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        },
        'Pulumi Cloud request failed; retrying',
      );
      try {
        await this.o.sleep(delayMs, req.signal);
      } catch (err) {
        if (req.signal?.aborted) throw this.abortedError(req);
        throw err;
      }
    }
  }

  /** One attempt inside the limiter; its answer adjusts the limit. */
  private async limited<T>(req: GetRequest<T>, url: string, attempt: number): Promise<Attempt<T>> {
    let permit: Permit;
    try {
      permit = await this.limiter.acquire(req.signal);
    } catch (err) {
      if (req.signal?.aborted) throw this.abortedError(req);
      throw err;
    }
    let result: Attempt<T> | undefined;
    try {
      result = await this.attemptOnce(req, url, attempt);
      return result;
    } finally {
      const retryAfterMs = result?.kind === 'http' ? result.retryAfterMs : undefined;
      const throttled = result?.kind === 'http' && (result.status === 429 || retryAfterMs !== undefined);
      // Read just before this release: only the answer that lowered the limit logs it, not
      // every request that was in flight when another one lowered it.
      const before = this.limiter.limit;
      permit.release(throttled ? 'throttled' : result?.kind === 'ok' ? 'ok' : 'failed', retryAfterMs);
      const after = this.limiter.limit;
      if (after < before) {
        this.o.logger.info(
          { endpoint: req.endpoint, concurrencyLimit: after, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
          'Pulumi Cloud is throttling; lowered the request concurrency limit',
        );
      }
    }
  }

  private abortedError(req: GetRequest<unknown>): ExporterError {
    return new ExporterError('API_ABORTED', `${describeRequest(req)} was abandoned: the exporter is stopping`, {
      retryable: true,
      details: { endpoint: req.endpoint, path: req.pathTemplate },
    });
  }

  private urlOf(req: GetRequest<unknown>): string {
    const qs = (req.query ?? []).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    return `${this.baseUrl}${req.path}${qs === '' ? '' : `?${qs}`}`;
  }

  private async attemptOnce<T>(req: GetRequest<T>, url: string, attempt: number): Promise<Attempt<T>> {
    const started = this.o.now();
    // One controller per attempt, aborted by the timeout or the caller's signal. Not
    // AbortSignal.any: on Node 20 it leaves a trace on the long-lived caller signal per call.
    const attemptAbort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attemptAbort.abort();
    }, this.o.requestTimeoutMillis);
    const onAbort = (): void => attemptAbort.abort();
    if (req.signal?.aborted) onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let outcome: Attempt<T>;
    try {
      outcome = await this.fetchOnce(req, url, attemptAbort.signal);
    } catch (err) {
      if (req.signal?.aborted) throw this.abortedError(req);
      outcome = timedOut ? { kind: 'timeout' } : { kind: 'network', detail: redact(networkDetail(err)), cause: err };
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    }
    const seconds = Math.max(0, (this.o.now() - started) / 1000);
    // A refused redirect is reported by its status; an oversized body as `malformed` (a failed
    // request), keeping the label to its documented values.
    const code =
      outcome.kind === 'ok' || outcome.kind === 'http' || outcome.kind === 'redirect'
        ? String(outcome.status)
        : outcome.kind === 'too_large'
          ? 'malformed'
          : outcome.kind;
    this.o.observer.request(req.endpoint, code, seconds);
    this.o.logger.debug(
      { endpoint: req.endpoint, path: req.pathTemplate, code, attempt, durationMs: Math.round(seconds * 1000) },
      'Pulumi Cloud request',
    );
    return outcome;
  }

  /**
   * GET following redirects only within the backend's origin: the token must never reach
   * another host, and a misconfigured or compromised backend must not make the exporter
   * fetch arbitrary URLs. The body is read up to maxResponseBytes.
   */
  private async fetchOnce<T>(req: GetRequest<T>, url: string, signal: AbortSignal): Promise<Attempt<T>> {
    let current = url;
    for (let hop = 0; ; hop += 1) {
      const res = await fetch(current, { method: 'GET', headers: this.headers, signal, redirect: 'manual' });
      if (REDIRECT_STATUSES.has(res.status)) {
        await res.body?.cancel().catch(() => undefined);
        const target = resolveLocation(res.headers.get('location'), current);
        if (target !== undefined && target.origin === this.origin && hop < MAX_REDIRECTS) {
          current = target.href;
          continue;
        }
        const where = target === undefined ? 'an unreadable Location' : target.origin === this.origin ? `${this.origin} (more than ${MAX_REDIRECTS} redirects)` : target.origin;
        this.o.logger.warn(
          { endpoint: req.endpoint, path: req.pathTemplate, status: res.status, target: redact(where), backend: this.origin },
          'Pulumi Cloud redirected to another origin (or in a loop); not following it',
        );
        return { kind: 'redirect', status: res.status, target: redact(where) };
      }
      const text = await readCapped(res, this.o.maxResponseBytes);
      if (text === undefined) {
        const requestId = res.headers.get('x-pulumi-request-id') ?? undefined;
        return { kind: 'too_large', status: res.status, ...(requestId === undefined ? {} : { requestId }) };
      }
      return this.interpret(req, res, text);
    }
  }

  private interpret<T>(req: GetRequest<T>, res: Response, text: string): Attempt<T> {
    const requestId = res.headers.get('x-pulumi-request-id') ?? undefined;
    this.logWarnings(req, res.headers.get('x-pulumi-warning'));
    if (res.status < 200 || res.status > 299) {
      const retryAfterMs = parseRetryAfterMillis(res.headers.get('retry-after'), this.o.now());
      const serverMessage = this.serverMessage(text);
      return {
        kind: 'http',
        status: res.status,
        ...(serverMessage === undefined ? {} : { serverMessage }),
        ...(requestId === undefined ? {} : { requestId }),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const problem = text.trim() === '' ? 'the body is empty' : 'the body is not JSON';
      return { kind: 'malformed', status: res.status, problem, ...(requestId === undefined ? {} : { requestId }) };
    }
    const parsed = req.parse(body);
    if (!parsed.ok) {
      return {
        kind: 'malformed',
        status: res.status,
        problem: truncate(redact(parsed.problem), MAX_SERVER_MESSAGE),
        ...(requestId === undefined ? {} : { requestId }),
      };
    }
    return { kind: 'ok', status: res.status, value: parsed.value };
  }

  private serverMessage(text: string): string | undefined {
    if (text.trim() === '') return undefined;
    let message: string | undefined;
    try {
      const r = wireErrorResponse.safeParse(JSON.parse(text));
      if (r.success && r.data.message) message = r.data.message;
    } catch {
      // not JSON: the raw text is the message, as the Pulumi CLI does
    }
    return truncate(redact(message ?? text.trim()), MAX_SERVER_MESSAGE);
  }

  private logWarnings(req: GetRequest<unknown>, header: string | null): void {
    if (header === null || header === '' || this.seenWarnings.has(header)) return;
    // Each distinct warning is logged once; the set is bounded in case the text varies.
    if (this.seenWarnings.size < 100) this.seenWarnings.add(header);
    this.o.logger.warn({ endpoint: req.endpoint, warning: redact(header) }, 'Pulumi Cloud sent a warning');
  }

  private finalError(
    req: GetRequest<unknown>,
    a: Exclude<Attempt<unknown>, { kind: 'ok' }>,
    attempts: number,
    deferred = false,
  ): ExporterError {
    const where = describeRequest(req);
    const tries = attempts === 1 ? '' : ` after ${attempts} attempts`;
    let code: ErrorCode;
    let what: string;
    let status: number | string;
    let retryable = false;
    let requestId: string | undefined;
    let cause: unknown;
    let retryAfterSeconds: number | undefined;
    switch (a.kind) {
      case 'timeout':
        code = 'API_TIMEOUT';
        what = `timed out after ${this.o.requestTimeoutMillis} ms${tries}`;
        status = 'timeout';
        retryable = true;
        break;
      case 'network':
        code = 'API_NETWORK';
        what = `failed at the network level (${a.detail})${tries}`;
        status = 'network';
        retryable = true;
        cause = a.cause;
        break;
      case 'too_large':
        code = 'API_RESPONSE_TOO_LARGE';
        what = `returned a response body larger than ${this.o.maxResponseBytes} bytes (pulumi.maxResponseBytes); the rest was not read`;
        status = a.status;
        requestId = a.requestId;
        break;
      case 'redirect':
        code = 'API_REDIRECT_REFUSED';
        what = `answered ${a.status} redirecting to ${a.target}; redirects are followed only within ${this.origin}`;
        status = a.status;
        break;
      case 'malformed':
        code = 'API_MALFORMED_RESPONSE';
        what = `returned a malformed response: ${a.problem}`;
        status = a.status;
        requestId = a.requestId;
        break;
      case 'http': {
        status = a.status;
        requestId = a.requestId;
        if (a.status === 401 || a.status === 403) code = 'API_UNAUTHORIZED';
        else if (a.status === 404) code = 'API_NOT_FOUND';
        else if (a.status === 429) code = 'API_RATE_LIMITED';
        else if (a.status >= 500) code = 'API_SERVER_ERROR';
        else code = 'API_HTTP_ERROR';
        retryable = a.status === 429 || a.status >= 500;
        what = `Pulumi Cloud answered ${a.status}${a.serverMessage === undefined ? '' : `: ${a.serverMessage}`}${tries}`;
        if (retryable && a.retryAfterMs !== undefined) {
          retryAfterSeconds = Math.ceil(a.retryAfterMs / 1000);
          const tooLong = deferred ? `, longer than the ${this.o.retryMaxDelayMillis} ms one retry may wait` : '';
          what += `; Pulumi Cloud asked to wait ${retryAfterSeconds} s (Retry-After)${tooLong}, so the next poll cycle retries`;
        }
        break;
      }
    }
    const rid = requestId === undefined ? '' : ` (request id ${requestId})`;
    return new ExporterError(code, redact(`${where} ${what}${rid}`), {
      retryable,
      ...(cause === undefined ? {} : { cause }),
      details: {
        endpoint: req.endpoint,
        path: req.pathTemplate,
        status,
        attempts,
        ...(requestId === undefined ? {} : { requestId: redact(requestId) }),
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      },
    });
  }
}
