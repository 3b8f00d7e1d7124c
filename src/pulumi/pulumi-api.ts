import type { EngineEvent } from '../domain/engine-event.js';
import type { StackRef, StackSummary } from '../domain/stack.js';
import type { UpdateInfo } from '../domain/update.js';

export interface HistoryPage {
  /** Newest first. */
  readonly updates: readonly UpdateInfo[];
  readonly itemsPerPage: number;
  readonly total: number;
}

export interface EventsPage {
  readonly events: readonly EngineEvent[];
  /** null = every event was returned and the update is complete. */
  readonly continuationToken: string | null;
}

/** Accepted by every PulumiCloudApi method. */
export interface CallOptions {
  /**
   * Aborts the call: in-flight requests, rate-limit and retry waits end at once and the
   * call rejects with API_ABORTED. The exporter passes its stop signal here.
   */
  readonly signal?: AbortSignal;
}

export interface EngineEventsOptions extends CallOptions {
  /** Resume from a token returned earlier. */
  readonly continuationToken?: string;
  /** Numeric engine-event type codes (repeatable `type` query parameter). */
  readonly types?: readonly number[];
  readonly urn?: string;
  /**
   * While an update runs the service repeats the same token with no new events.
   * The iterator stops at such a repeat (the caller resumes later from the last page's
   * token) instead of spinning; for a completed update a repeat is an API_PAGING_LOOP error.
   * Default false.
   */
  readonly inProgress?: boolean;
}

export interface HistorySinceOptions extends CallOptions {
  /** Stop paging once an update with version <= afterVersion is reached (0 = no floor). */
  readonly afterVersion: number;
  /** Stop paging once an update started before this Unix second is reached. */
  readonly notBeforeSeconds?: number;
}

export interface PreviewsSinceOptions extends CallOptions {
  /** The stack version whose previews are listed; undefined = the latest version (`updates/latest/previews`). */
  readonly version?: number;
  /** Stop paging once a preview started before this Unix second is reached. */
  readonly notBeforeSeconds?: number;
}

export interface UpdateStatus {
  readonly status: string;
  readonly continuationToken: string | null;
}

/**
 * The read-only part of the Pulumi Cloud REST API the exporter uses. Implemented by
 * PulumiClient over HTTP; tests of the layers above may use a fake.
 * Every method rejects only with ExporterError (API_* codes).
 */
export interface PulumiCloudApi {
  /** Every stack of the org, following continuation tokens. */
  listStacks(org: string, options?: CallOptions): Promise<StackSummary[]>;
  /** One page (1-based) of a stack's update history, newest first. */
  listUpdates(ref: StackRef, page: number, pageSize: number, options?: CallOptions): Promise<HistoryPage>;
  /** Updates newer than `afterVersion` (and not older than `notBeforeSeconds`), newest first. */
  historySince(ref: StackRef, options: HistorySinceOptions): Promise<UpdateInfo[]>;
  /**
   * Engine events of one update, page by page, in stream order: each page is fetched only
   * when the consumer asks for the next one, so a consumer that handles pages as they
   * arrive holds one page at a time.
   */
  engineEvents(ref: StackRef, updateId: string, options?: EngineEventsOptions): AsyncIterable<EventsPage>;
  /** Previews of the latest stack version, newest first. */
  latestPreviews(ref: StackRef, page: number, pageSize: number, options?: CallOptions): Promise<HistoryPage>;
  /**
   * Previews run against one stack version (or the latest), newest first, down to
   * `notBeforeSeconds`: every page of `updates/{version|latest}/previews?asc=false`.
   */
  previewsSince(ref: StackRef, options: PreviewsSinceOptions): Promise<UpdateInfo[]>;
  /** Legacy status probe `GET .../{kind}/{updateID}`. */
  updateStatus(ref: StackRef, kind: string, updateId: string, options?: CallOptions): Promise<UpdateStatus>;
}
