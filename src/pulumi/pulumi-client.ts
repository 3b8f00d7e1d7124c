import { setTimeout } from 'node:timers/promises';
import type { z } from 'zod';
import type { EngineEvent } from '../domain/engine-event.js';
import { stackKey, type StackRef, type StackSummary } from '../domain/stack.js';
import { isPreviewKind, type UpdateInfo } from '../domain/update.js';
import { ExporterError, isExporterError } from '../errors.js';
import { silentLogger, type Logger } from '../logging/logger.js';
import { noopApiObserver, type ApiObserver } from './api-observer.js';
import { ApiTransport, type ParseResult } from './api-transport.js';
import type {
  CallOptions,
  EngineEventsOptions,
  EventsPage,
  HistoryPage,
  HistorySinceOptions,
  PreviewsSinceOptions,
  PulumiCloudApi,
  UpdateStatus,
} from './pulumi-api.js';
import { parseEngineEvent } from './wire-events.js';
import {
  describeZodError,
  nextToken,
  toHistoryPage,
  toStackSummary,
  toUpdateStatus,
  wireEventsResponse,
  wireListStacksResponse,
  wireUpdateStatus,
  wireUpdatesResponse,
} from './wire-schema.js';

export interface PulumiClientOptions {
  /** `https://api.pulumi.com` or a self-hosted API URL (a path prefix is kept). */
  readonly baseUrl: string;
  readonly accessToken: string;
  /** The exporter version, sent as `User-Agent: pulumi-update-exporter/<version>`. */
  readonly version: string;
  /** Per attempt, headers and body together. Default 30000. */
  readonly requestTimeoutMillis?: number;
  /** Attempts per request including the first. Default 4. */
  readonly maxAttempts?: number;
  /** Backoff ceiling of the first retry; doubles per retry. Default 1000. */
  readonly retryBaseDelayMillis?: number;
  /** Cap of every backoff and of Retry-After. Default 30000. */
  readonly retryMaxDelayMillis?: number;
  /** Optional client-wide hard cap on request starts per second. Default 0 = none (adaptive only). */
  readonly requestsPerSecond?: number;
  /** Client-wide cap on requests in flight, where the adaptive limit starts. Default 8. */
  readonly maxConcurrentRequests?: number;
  /** Page size historySince requests. Default 100. */
  readonly historyPageSize?: number;
  /** Larger (decoded) response bodies fail with API_RESPONSE_TOO_LARGE. Default 8 MiB. */
  readonly maxResponseBytes?: number;
  /** Pages one stack listing, history read or update event stream may take (API_TOO_MANY_PAGES). Default 1000. */
  readonly maxPagesPerListing?: number;
  readonly observer?: ApiObserver;
  readonly logger?: Logger;
  /** Injected for tests: backoff and rate-limit waits. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Injected for tests: Unix milliseconds. */
  readonly now?: () => number;
  /** Injected for tests: the jitter source, uniform in [0, 1). */
  readonly random?: () => number;
}

const STACK_PATH = '/api/stacks/{org}/{project}/{stack}';
const PATHS = {
  listStacks: '/api/user/stacks',
  listUpdates: `${STACK_PATH}/updates`,
  latestPreviews: `${STACK_PATH}/updates/latest/previews`,
  versionPreviews: `${STACK_PATH}/updates/{version}/previews`,
  updateStatus: `${STACK_PATH}/{kind}/{updateID}`,
  engineEvents: `${STACK_PATH}/update/{updateID}/events`,
} as const;

type WireStacksPage = z.infer<typeof wireListStacksResponse>;

const STATUS_KINDS = new Set(['update', 'preview', 'refresh', 'destroy']);

/**
 * Stacks asked for per /api/user/stacks page (`maxResults`). shared pulumi-api.md 2.1 lists the
 * parameter but names no maximum; a server that refuses it (400) is asked without it.
 */
export const STACK_PAGE_MAX_RESULTS = 500;

const enc = encodeURIComponent;

function stackPath(ref: StackRef): string {
  return `/api/stacks/${enc(ref.org)}/${enc(ref.project)}/${enc(ref.stack)}`;
}

function parseWith<S extends z.ZodType, T>(schema: S, map: (data: z.infer<S>) => ParseResult<T>): (body: unknown) => ParseResult<T> {
  return (body) => {
    const r = schema.safeParse(body);
    if (!r.success) return { ok: false, problem: describeZodError(r.error) };
    return map(r.data);
  };
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return setTimeout(ms, undefined, { signal });
}

/**
 * The status route has one variant per kind (update, preview, refresh, destroy); preview
 * kinds (`Pupdate`, ...) use `preview`, and anything else `update`, which the service
 * treats alike (shared pulumi-api.md 2.7).
 */
export function statusPathKind(kind: string): string {
  if (STATUS_KINDS.has(kind)) return kind;
  if (isPreviewKind(kind)) return 'preview';
  return 'update';
}

function positiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new ExporterError('INTERNAL', `${name} must be a positive integer, got ${String(value)}`);
  }
}

/** Pulumi Cloud REST client over global fetch; see PulumiCloudApi for the semantics. */
export class PulumiClient implements PulumiCloudApi {
  private readonly transport: ApiTransport;
  private readonly logger: Logger;
  private readonly historyPageSize: number;
  private readonly maxPages: number;
  /** Cleared when the server answers 400 to a listing that sent maxResults. */
  private sendMaxResults = true;

  constructor(options: PulumiClientOptions) {
    if (options.accessToken.trim() === '') {
      throw new ExporterError('CONFIG_MISSING_TOKEN', 'the Pulumi client needs a non-empty access token');
    }
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new ExporterError('CONFIG_INVALID', `the Pulumi backend URL is not a URL: ${options.baseUrl}`);
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new ExporterError('CONFIG_INVALID', `the Pulumi backend URL must be http(s): ${options.baseUrl}`);
    }
    const numbers = {
      requestTimeoutMillis: options.requestTimeoutMillis ?? 30_000,
      maxAttempts: options.maxAttempts ?? 4,
      retryBaseDelayMillis: options.retryBaseDelayMillis ?? 1_000,
      retryMaxDelayMillis: options.retryMaxDelayMillis ?? 30_000,
      requestsPerSecond: options.requestsPerSecond ?? 0,
      maxConcurrentRequests: options.maxConcurrentRequests ?? 8,
      historyPageSize: options.historyPageSize ?? 100,
      maxResponseBytes: options.maxResponseBytes ?? 8 * 1024 * 1024,
      maxPagesPerListing: options.maxPagesPerListing ?? 1000,
    };
    const bad = Object.entries(numbers).filter(([k, v]) =>
      k === 'retryBaseDelayMillis' || k === 'retryMaxDelayMillis' || k === 'requestsPerSecond' ? !(v >= 0) : !(v > 0),
    );
    const integers = [numbers.maxAttempts, numbers.maxConcurrentRequests, numbers.maxPagesPerListing];
    if (bad.length > 0 || !integers.every((n) => Number.isInteger(n))) {
      throw new ExporterError('CONFIG_INVALID', `invalid Pulumi client options: ${JSON.stringify(numbers)}`);
    }
    this.logger = options.logger ?? silentLogger();
    this.historyPageSize = numbers.historyPageSize;
    this.maxPages = numbers.maxPagesPerListing;
    this.transport = new ApiTransport({
      baseUrl: base.href,
      accessToken: options.accessToken,
      userAgent: `pulumi-update-exporter/${options.version}`,
      requestTimeoutMillis: numbers.requestTimeoutMillis,
      maxAttempts: numbers.maxAttempts,
      retryBaseDelayMillis: numbers.retryBaseDelayMillis,
      retryMaxDelayMillis: numbers.retryMaxDelayMillis,
      requestsPerSecond: numbers.requestsPerSecond,
      maxConcurrentRequests: numbers.maxConcurrentRequests,
      maxResponseBytes: numbers.maxResponseBytes,
      observer: options.observer ?? noopApiObserver,
      logger: this.logger,
      sleep: options.sleep ?? defaultSleep,
      now: options.now ?? Date.now,
      random: options.random ?? Math.random,
    });
  }

  async listStacks(org: string, options: CallOptions = {}): Promise<StackSummary[]> {
    const byKey = new Map<string, StackSummary>();
    const seen = new Set<string>();
    let token: string | null = null;
    for (let pages = 1; ; pages += 1) {
      const page = await this.stacksPage(org, token, options);
      const rows = page.stacks ?? [];
      for (const row of rows) {
        const s = toStackSummary(row);
        if (!byKey.has(stackKey(s))) byKey.set(stackKey(s), s);
      }
      const next = nextToken(page.continuationToken);
      if (next === null) break;
      if (seen.has(next) || next === token) {
        throw this.pagingLoop('listStacks', PATHS.listStacks, `org ${org}`);
      }
      if (rows.length === 0) {
        // The CLI's generic paginator treats a cursor with an empty page as the end.
        this.logger.debug({ endpoint: 'listStacks', org }, 'empty stack page with a continuation token; stopping');
        break;
      }
      if (pages >= this.maxPages) throw this.tooManyPages('listStacks', PATHS.listStacks, `org ${org}`);
      seen.add(next);
      token = next;
    }
    return [...byKey.values()];
  }

  /**
   * One stack-list page, with maxResults unless the server refused it before: a 400 to a
   * page with maxResults is asked again without it, and only if that works does the client
   * stop sending it (a 400 for another reason fails the same way both times).
   */
  private async stacksPage(org: string, token: string | null, options: CallOptions): Promise<WireStacksPage> {
    if (!this.sendMaxResults) return this.stacksRequest(org, token, options, false);
    try {
      return await this.stacksRequest(org, token, options, true);
    } catch (err) {
      if (!isExporterError(err) || err.code !== 'API_HTTP_ERROR' || err.details['status'] !== 400) throw err;
      const page = await this.stacksRequest(org, token, options, false);
      if (this.sendMaxResults) {
        this.sendMaxResults = false;
        this.logger.warn({ endpoint: 'listStacks', org, maxResults: STACK_PAGE_MAX_RESULTS, error: err.message }, 'Pulumi Cloud refused maxResults; listing stacks with its default page size from now on');
      }
      return page;
    }
  }

  private stacksRequest(org: string, token: string | null, options: CallOptions, withMax: boolean): Promise<WireStacksPage> {
    const query: Array<[string, string]> = [['organization', org]];
    if (withMax) query.push(['maxResults', String(STACK_PAGE_MAX_RESULTS)]);
    if (token !== null) query.push(['continuationToken', token]);
    return this.transport.get({
      endpoint: 'listStacks',
      pathTemplate: PATHS.listStacks,
      path: PATHS.listStacks,
      query,
      subject: `org ${org}`,
      parse: parseWith(wireListStacksResponse, (d) => ({ ok: true, value: d })),
      signal: options.signal,
    });
  }

  async listUpdates(ref: StackRef, page: number, pageSize: number, options: CallOptions = {}): Promise<HistoryPage> {
    return (await this.updatesPage(ref, page, pageSize, options)).page;
  }

  async historySince(ref: StackRef, options: HistorySinceOptions): Promise<UpdateInfo[]> {
    const out: UpdateInfo[] = [];
    const ids = new Set<string>();
    const floor = options.notBeforeSeconds;
    for (let page = 1; ; page += 1) {
      const { page: hp, totalReported } = await this.updatesPage(ref, page, this.historyPageSize, options);
      for (const u of hp.updates) {
        if (options.afterVersion > 0 && u.version <= options.afterVersion) return out;
        if (floor !== undefined && u.startTime < floor) return out;
        // Updates created while paging shift older entries onto the next page.
        if (ids.has(u.updateId)) continue;
        ids.add(u.updateId);
        out.push(u);
      }
      if (this.lastPage(hp, page, totalReported)) return out;
      if (page >= this.maxPages) throw this.tooManyPages('listUpdates', PATHS.listUpdates, stackKey(ref));
    }
  }

  async *engineEvents(ref: StackRef, updateId: string, options: EngineEventsOptions = {}): AsyncGenerator<EventsPage> {
    const path = `${stackPath(ref)}/update/${enc(updateId)}/events`;
    const subject = `${stackKey(ref)} update ${updateId}`;
    const seen = new Set<string>();
    let token: string | null = nextToken(options.continuationToken);
    if (token !== null) seen.add(token);
    for (let pages = 1; ; pages += 1) {
      const query: Array<[string, string]> = [];
      if (token !== null) query.push(['continuationToken', token]);
      for (const t of options.types ?? []) query.push(['type', String(t)]);
      if (options.urn !== undefined) query.push(['urn', options.urn]);
      const page: EventsPage = await this.transport.get({
        endpoint: 'engineEvents',
        pathTemplate: PATHS.engineEvents,
        path,
        query,
        subject,
        signal: options.signal,
        parse: parseWith(wireEventsResponse, (d) => {
          const events: EngineEvent[] = [];
          for (const [i, raw] of (d.events ?? []).entries()) {
            const r = parseEngineEvent(raw);
            if (!r.ok) return { ok: false, problem: `events.${i}: ${r.problem}` };
            events.push(r.event);
          }
          return { ok: true, value: { events, continuationToken: nextToken(d.continuationToken) } };
        }),
      });
      const next = page.continuationToken;
      if (next === null) {
        yield page;
        return;
      }
      if (next === token && options.inProgress === true) {
        // A running update with nothing new: the caller resumes later from `token`.
        if (page.events.length > 0) yield page;
        return;
      }
      if (seen.has(next)) {
        throw this.pagingLoop('engineEvents', PATHS.engineEvents, subject);
      }
      if (pages >= this.maxPages) throw this.tooManyPages('engineEvents', PATHS.engineEvents, subject);
      seen.add(next);
      yield page;
      token = next;
    }
  }

  async latestPreviews(ref: StackRef, page: number, pageSize: number, options: CallOptions = {}): Promise<HistoryPage> {
    return (await this.previewsPage(ref, undefined, page, pageSize, options)).page;
  }

  /** A page-numbered listing (history, previews) ends at a short page, or at `total` when the service reports it. */
  private lastPage(hp: HistoryPage, page: number, totalReported: boolean): boolean {
    const perPage = hp.itemsPerPage > 0 ? hp.itemsPerPage : this.historyPageSize;
    if (hp.updates.length === 0 || hp.updates.length < perPage) return true;
    return totalReported && page * perPage >= hp.total;
  }

  async previewsSince(ref: StackRef, options: PreviewsSinceOptions): Promise<UpdateInfo[]> {
    const { version } = options;
    if (version !== undefined && (!Number.isInteger(version) || version < 0)) {
      throw new ExporterError('INTERNAL', `a stack version must be a non-negative integer, got ${String(version)}`);
    }
    const out: UpdateInfo[] = [];
    const ids = new Set<string>();
    const floor = options.notBeforeSeconds;
    for (let page = 1; ; page += 1) {
      const { page: hp, totalReported } = await this.previewsPage(ref, version, page, this.historyPageSize, options);
      for (const u of hp.updates) {
        if (floor !== undefined && u.startTime < floor) return out;
        // Previews started while paging shift older entries onto the next page.
        if (ids.has(u.updateId)) continue;
        ids.add(u.updateId);
        out.push(u);
      }
      if (this.lastPage(hp, page, totalReported)) return out;
      if (page >= this.maxPages) {
        const endpoint = version === undefined ? 'latestPreviews' : 'versionPreviews';
        throw this.tooManyPages(endpoint, PATHS[endpoint], stackKey(ref));
      }
    }
  }

  /**
   * One page of a previews listing, newest first (`asc` is always sent: sources disagree on
   * its default, shared pulumi-api.md 2.5). An entry whose kind is not a preview kind makes
   * the answer malformed: counting it as a preview would count a history update twice.
   */
  private async previewsPage(
    ref: StackRef,
    version: number | undefined,
    page: number,
    pageSize: number,
    options: CallOptions,
  ): Promise<{ page: HistoryPage; totalReported: boolean }> {
    positiveInt('page', page);
    positiveInt('pageSize', pageSize);
    const endpoint = version === undefined ? 'latestPreviews' : 'versionPreviews';
    return this.transport.get({
      endpoint,
      pathTemplate: PATHS[endpoint],
      path: `${stackPath(ref)}/updates/${version === undefined ? 'latest' : String(version)}/previews`,
      query: [
        ['asc', 'false'],
        ['page', String(page)],
        ['pageSize', String(pageSize)],
      ],
      subject: stackKey(ref),
      signal: options.signal,
      parse: parseWith(wireUpdatesResponse, (d) => {
        const r = toHistoryPage(ref, d, page, pageSize);
        if (!r.ok) return r;
        const i = r.page.updates.findIndex((u) => !isPreviewKind(u.kind));
        if (i >= 0) return { ok: false, problem: `updates.${i}: kind "${r.page.updates[i]?.kind ?? ''}" is not a preview kind` };
        return { ok: true, value: { page: r.page, totalReported: typeof d.total === 'number' } };
      }),
    });
  }

  async updateStatus(ref: StackRef, kind: string, updateId: string, options: CallOptions = {}): Promise<UpdateStatus> {
    return this.transport.get({
      endpoint: 'updateStatus',
      pathTemplate: PATHS.updateStatus,
      path: `${stackPath(ref)}/${statusPathKind(kind)}/${enc(updateId)}`,
      subject: `${stackKey(ref)} update ${updateId}`,
      signal: options.signal,
      parse: parseWith(wireUpdateStatus, (d) => ({ ok: true, value: toUpdateStatus(d) })),
    });
  }

  private async updatesPage(
    ref: StackRef,
    page: number,
    pageSize: number,
    options: CallOptions,
  ): Promise<{ page: HistoryPage; totalReported: boolean }> {
    positiveInt('page', page);
    positiveInt('pageSize', pageSize);
    return this.transport.get({
      endpoint: 'listUpdates',
      pathTemplate: PATHS.listUpdates,
      path: `${stackPath(ref)}/updates`,
      query: [
        ['output-type', 'service'],
        ['page', String(page)],
        ['pageSize', String(pageSize)],
      ],
      subject: stackKey(ref),
      signal: options.signal,
      parse: parseWith(wireUpdatesResponse, (d) => {
        const r = toHistoryPage(ref, d, page, pageSize);
        return r.ok ? { ok: true, value: { page: r.page, totalReported: typeof d.total === 'number' } } : r;
      }),
    });
  }

  private tooManyPages(endpoint: string, pathTemplate: string, subject: string): ExporterError {
    return new ExporterError(
      'API_TOO_MANY_PAGES',
      `${endpoint} (GET ${pathTemplate}) for ${subject} still had more pages after ${this.maxPages} (pulumi.maxPagesPerListing)`,
      { retryable: false, details: { endpoint, path: pathTemplate, maxPagesPerListing: this.maxPages } },
    );
  }

  private pagingLoop(endpoint: string, pathTemplate: string, subject: string): ExporterError {
    return new ExporterError(
      'API_PAGING_LOOP',
      `${endpoint} (GET ${pathTemplate}) for ${subject} returned a continuation token it had returned before`,
      { retryable: false, details: { endpoint, path: pathTemplate } },
    );
  }
}
