import { convertUpdate, type ConversionOptions, type ConversionResult } from '../conversion/convert-update.js';
import type { Clock } from '../domain/clock.js';
import type { EngineEvent } from '../domain/engine-event.js';
import { stackKey, type StackRef } from '../domain/stack.js';
import type { TraceRecord } from '../domain/trace.js';
import { isTerminal, type UpdateInfo } from '../domain/update.js';
import { ExporterError, errorCodeOf, isExporterError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { kindLabel, updateMetricDeltas, type MetricDetail } from '../metrics/update-deltas.js';
import type { PulumiCloudApi } from '../pulumi/pulumi-api.js';
import type { Coordinator } from '../state/coordinator.js';
import type { FollowRecord, InProgressRecord, StackRecord, StateStore, UpdateCommit } from '../state/state-store.js';
import type { SpanSink } from '../tracing/span-sink.js';
import type { BackfillProgress } from './backfill-progress.js';
import { followUpdate, type FollowContext } from './follow-update.js';
import type { SyncMetrics } from './sync-metrics.js';
import type { UpdateAttempts } from './update-attempts.js';

export interface StackSyncDeps {
  readonly api: PulumiCloudApi;
  readonly store: StateStore;
  readonly sink: SpanSink;
  readonly metrics: SyncMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly conversion: ConversionOptions;
  readonly metricDetail: MetricDetail;
  /** 0 = the whole history. */
  readonly backfillDays: number;
  /** Failures in a row, per update, of errors specific to that update. */
  readonly attempts: UpdateAttempts;
  readonly maxUpdateAttempts: number;
  /**
   * A stack's consecutive updates are sent in one export and committed in one store
   * transaction until their traces reach this many spans (traces.batchMaxSpans) or no
   * update of the stack is left.
   */
  readonly batchMaxSpans: number;
  /** Several replicas on one store: only stacks whose lease this replica holds are exported. */
  readonly coordinator?: Coordinator;
  /** Set when running updates are followed (poll.followIntervalSeconds > 0): see follow-update.ts. */
  readonly follow?: FollowContext;
}

/** State shared by the stack syncs of one poll cycle. */
export interface CycleContext {
  /**
   * Set when the collector failed retryably in this cycle: the remaining updates are not
   * sent (each would wait out the exporter's timeout too) and stay in the backlog.
   */
  sinkFailure?: string;
}

export interface StackSyncResult {
  readonly stack: StackRef;
  readonly ok: boolean;
  readonly exported: number;
  readonly skipped: number;
  readonly inProgress: number;
  readonly error?: unknown;
}

/**
 * Errors caused by one update's own data: retrying cannot help forever, so after
 * maxUpdateAttempts cycles the update is counted without its trace instead of blocking
 * every later update of its stack. Outages (429, 5xx, network, auth) are retried forever.
 */
const UPDATE_SPECIFIC: ReadonlySet<ErrorCode> = new Set(['API_MALFORMED_RESPONSE', 'API_PAGING_LOOP', 'API_RESPONSE_TOO_LARGE', 'API_TOO_MANY_PAGES', 'INTERNAL']);

/**
 * The oldest update start time this stack's backfill looks at. Anchored to when the
 * exporter first saw the stack, so restarts do not move the window.
 */
export function backfillFloorSeconds(stack: StackRecord, backfillDays: number): number | undefined {
  if (backfillDays <= 0) return undefined;
  return Math.floor(stack.firstSeenMs / 1000 - backfillDays * 86_400);
}

/** The root span marked as built without engine events. */
function markIncomplete(trace: TraceRecord, reason: string): TraceRecord {
  const [root, ...rest] = trace.spans;
  if (root === undefined) return trace;
  return { ...trace, spans: [{ ...root, attributes: { ...root.attributes, 'pulumi.trace.incomplete': reason } }, ...rest] };
}

/** The trace without the step spans sent while the update was running (the root is never among them). */
function withoutFollowedSpans(trace: TraceRecord, followed: FollowRecord | undefined): TraceRecord {
  if (followed === undefined || followed.sentSpanIds.length === 0) return trace;
  const sent = new Set(followed.sentSpanIds);
  return { ...trace, spans: trace.spans.filter((s) => !sent.has(s.spanId)) };
}

/**
 * Newest-first history down to the cursor. The cursor's own update is read too: if the
 * history no longer holds that exported update at that version, the stack was deleted and
 * created again (versions restart at 1), so its cursor is reset and it is read from the start.
 */
async function newHistory(deps: StackSyncDeps, stack: StackRecord, log: Logger, signal?: AbortSignal): Promise<UpdateInfo[]> {
  const floor = backfillFloorSeconds(stack, deps.backfillDays);
  const bounds = { ...(floor === undefined ? {} : { notBeforeSeconds: floor }), signal };
  const cursor = stack.cursorVersion;
  const history = await deps.api.historySince(stack, { afterVersion: Math.max(0, cursor - 1), ...bounds });
  if (cursor > 0) {
    const anchor = history.find((u) => u.version === cursor);
    if (anchor === undefined || !(await deps.store.isExported(stack, anchor.updateId))) {
      log.warn({ cursorVersion: cursor }, 'history no longer holds the exported update at the cursor (re-created stack?); reading it from the start');
      await deps.store.resetCursor(stack);
      const all = await deps.api.historySince(stack, { afterVersion: 0, ...bounds });
      return floor === undefined ? all : all.filter((u) => u.startTime >= floor);
    }
  }
  return floor === undefined ? history : history.filter((u) => u.startTime >= floor);
}

/**
 * Brings one stack up to date: reads its new history, records running updates, then
 * exports each new terminal update oldest first (events -> trace -> sink -> metrics +
 * cursor in one store transaction). Stops at the first update that cannot be exported yet,
 * so nothing is skipped; the next cycle resumes there. The stack is marked synced only
 * when nothing is left to do, so a stack with pending or running updates is revisited.
 */
export async function syncStack(
  deps: StackSyncDeps,
  stack: StackRecord,
  progress: BackfillProgress,
  signal?: AbortSignal,
  cycle: CycleContext = {},
): Promise<StackSyncResult> {
  const log = deps.logger.child({ stack: stackKey(stack) });
  let exported = 0;
  let skipped = 0;
  let inProgress = 0;
  try {
    const history = await newHistory(deps, stack, log, signal);
    const running: InProgressRecord[] = history
      .filter((u) => !isTerminal(u.result))
      .map((u) => ({ stack, updateId: u.updateId, kind: u.kind, version: u.version, startTime: u.startTime }));
    inProgress = running.length;
    await deps.store.setInProgress(stack, running);

    const fresh: UpdateInfo[] = [];
    // Updates already in the ledger (e.g. the history of a renamed stack) are skipped; the
    // cursor moves over the oldest-first run of them so the next sync does not page them again.
    let exportedPrefix = 0;
    for (const u of history.filter((x) => isTerminal(x.result)).reverse()) {
      if (await deps.store.isExported(stack, u.updateId)) {
        skipped += 1;
        if (fresh.length === 0) exportedPrefix = u.version;
      } else fresh.push(u);
    }
    if (exportedPrefix > stack.cursorVersion) await deps.store.advanceCursor(stack, exportedPrefix);
    progress.historyRead(stack, fresh.length);

    // The next update's events are read while the current one is converted, exported and
    // committed (one update ahead, so at most two updates' events are held per stack). The
    // read-ahead stops when the stack does: it only ever reads, and its outcome counts
    // (attempts, errors) only once its update's turn comes.
    const readAhead = new AbortController();
    const stop = (): void => readAhead.abort();
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    const reading = readAhead.signal;
    // Consecutive updates ready to be sent together (see StackSyncDeps.batchMaxSpans).
    let batch: PreparedUpdate[] = [];
    let batchSpans = 0;
    const flush = async (): Promise<void> => {
      const sending = batch;
      batch = [];
      batchSpans = 0;
      if (sending.length === 0) return;
      await sendAndCommit(deps, stack, sending, cycle, (committed) => {
        if (committed) exported += 1;
        else skipped += 1;
        progress.exported();
      });
    };
    try {
      // With the collector down in this cycle, no events are read: their traces could not be sent.
      const readable = (u: UpdateInfo | undefined): u is UpdateInfo => u !== undefined && !sinkFailed(deps, cycle);
      let next = readable(fresh[0]) ? fetchEvents(deps, stack, fresh[0], progress, reading) : undefined;
      for (let i = 0; i < fresh.length; i++) {
        const update = fresh[i] as UpdateInfo;
        if (signal?.aborted) return { stack, ok: false, exported, skipped, inProgress, error: new Error('aborted') };
        if (deps.coordinator !== undefined && !deps.coordinator.holds(stack)) {
          // Handed over (lease expired or above this replica's share): its holder goes on from the cursor.
          log.debug({ exported }, 'this replica no longer holds the stack; leaving the rest to its new holder');
          return { stack, ok: true, exported, skipped, inProgress };
        }
        throwIfSinkFailed(deps, cycle);
        const read = await (next as Promise<EventsRead>);
        const following = fresh[i + 1];
        next = readable(following) ? fetchEvents(deps, stack, following, progress, reading) : undefined;
        const updateLog = log.child({ updateId: update.updateId, version: update.version });
        // An update whose events could not be read has its turn (and its failure counts)
        // only once the updates before it are committed.
        if (!read.ok) await flush();
        let prepared: PreparedUpdate;
        try {
          prepared = await prepareUpdate(deps, stack, update, read, updateLog, signal, cycle);
        } catch (err) {
          // The updates before this one are ready: they are sent and committed before the stack stops.
          await flush();
          throw err;
        }
        batch.push(prepared);
        batchSpans += prepared.spans;
        if (batchSpans >= deps.batchMaxSpans) await flush();
      }
      await flush();
    } finally {
      signal?.removeEventListener('abort', stop);
      readAhead.abort();
    }
    if (deps.follow !== undefined && !sinkFailed(deps, cycle)) {
      for (const u of history.filter((x) => !isTerminal(x.result)).reverse()) {
        if (signal?.aborted) break;
        await followUpdate(deps, deps.follow, stack, u, log.child({ updateId: u.updateId, version: u.version }), signal);
      }
    }
    if (inProgress === 0) await deps.store.markStackSynced(stack, stack.lastUpdate);
    return { stack, ok: true, exported, skipped, inProgress };
  } catch (err) {
    const code = errorCodeOf(err);
    if (signal?.aborted || (isExporterError(err) && err.details['deferred'] === true)) {
      log.debug({ code, exported, error: err instanceof Error ? err.message : String(err) }, 'stack sync stopped early; it resumes next cycle');
    } else {
      deps.metrics.error(code);
      // Expected failures are described by their code and message; a stack trace only helps for bugs.
      log.warn({ ...(isExporterError(err) ? { error: err.message } : { err }), code, exported }, 'stack sync failed; it is retried next cycle');
    }
    return { stack, ok: false, exported, skipped, inProgress, error: err };
  }
}

/** The engine events of one update as read, or why they could not be read. */
export type EventsRead = { readonly ok: true; readonly events: EngineEvent[] } | { readonly ok: false; readonly error: unknown };

/** Reads every event page of an update; never rejects (the caller decides what a failure means). */
export async function fetchEvents(
  deps: StackSyncDeps,
  stack: StackRef,
  update: UpdateInfo,
  progress: BackfillProgress,
  signal: AbortSignal,
): Promise<EventsRead> {
  // A followed update's stream is read on from where following left it.
  const followed = deps.follow?.streams.get(stack, update.updateId);
  const events: EngineEvent[] = followed === undefined ? [] : [...followed.events];
  const token = followed?.token;
  try {
    if (token !== null) {
      for await (const page of deps.api.engineEvents(stack, update.updateId, { ...(token === undefined ? {} : { continuationToken: token }), signal })) {
        for (const event of page.events) events.push(event);
        progress.eventsRead(page.events.length);
        if (signal.aborted) throw new Error('stopping: the remaining event pages are read after the restart');
      }
    }
    return { ok: true, events };
  } catch (error) {
    // The next attempt reads the whole stream again.
    if (followed !== undefined) deps.follow?.streams.forget(stack, update.updateId);
    return { ok: false, error };
  }
}

/**
 * Takes the events read for an update, or decides to go on without them: none exist (404,
 * e.g. a stack import), or they failed in an update-specific way maxUpdateAttempts cycles
 * in a row. Otherwise the read's error stops the stack.
 */
function eventsOrFallback(
  deps: StackSyncDeps,
  update: UpdateInfo,
  read: EventsRead,
  log: Logger,
  signal?: AbortSignal,
): { events: EngineEvent[]; incomplete?: string } {
  if (read.ok) return { events: read.events };
  const err = read.error;
  const code = errorCodeOf(err);
  if (code === 'API_NOT_FOUND') {
    log.info({ kind: update.kind }, 'the update has no engine events; exporting it from its history entry');
    return { events: [], incomplete: 'no engine events' };
  }
  if (!UPDATE_SPECIFIC.has(code) || signal?.aborted) {
    deps.attempts.clear(update.updateId);
    throw err;
  }
  if (deps.attempts.fail(update.updateId, 'events') < deps.maxUpdateAttempts) throw err;
  deps.metrics.error(code);
  log.error({ err, code, attempts: deps.maxUpdateAttempts }, 'engine events of this update keep failing; counting it from its history entry without resource spans');
  return { events: [], incomplete: `engine events unreadable: ${code}` };
}

function sinkFailed(deps: StackSyncDeps, cycle: CycleContext): boolean {
  return deps.sink.enabled && cycle.sinkFailure !== undefined;
}

export function throwIfSinkFailed(deps: StackSyncDeps, cycle: CycleContext): void {
  if (sinkFailed(deps, cycle)) {
    throw new ExporterError('TRACE_EXPORT_FAILED', `not sent: the collector failed earlier in this cycle (${cycle.sinkFailure}); retried next cycle`, {
      retryable: true,
      details: { deferred: true },
    });
  }
}

/** An update converted and ready to be sent and committed. */
export interface PreparedUpdate {
  readonly update: UpdateInfo;
  readonly conversion: ConversionResult;
  /** What is sent: the conversion's trace, without spans sent while it ran; undefined when traces are off. */
  readonly trace: TraceRecord | undefined;
  /** Spans of the conversion's trace (counted with traces off too: they bound a batch). */
  readonly spans: number;
  readonly log: Logger;
}

/** Converts one update's events (or goes on without them, see eventsOrFallback). Throws to stop the stack. */
export async function prepareUpdate(
  deps: StackSyncDeps,
  stack: StackRef,
  update: UpdateInfo,
  read: EventsRead,
  log: Logger,
  signal: AbortSignal | undefined,
  cycle: CycleContext,
): Promise<PreparedUpdate> {
  // Checked before the events are used and again before sending: the collector may have
  // failed while they were read.
  throwIfSinkFailed(deps, cycle);
  const { events, incomplete } = eventsOrFallback(deps, update, read, log, signal);
  let conversion: ConversionResult;
  try {
    conversion = convertUpdate(update, events, deps.conversion);
  } catch (err) {
    // A conversion bug must not block the stack forever either.
    if (deps.attempts.fail(update.updateId, 'conversion') < deps.maxUpdateAttempts) throw err;
    deps.metrics.error('INTERNAL');
    log.error({ err }, 'converting this update keeps failing; counting it from its history entry without resource spans');
    conversion = convertUpdate(update, [], deps.conversion);
  }
  const trace = deps.sink.enabled
    ? withoutFollowedSpans(
        incomplete === undefined ? conversion.trace : markIncomplete(conversion.trace, incomplete),
        await deps.store.readFollow(stack, update.updateId),
      )
    : undefined;
  return { update, conversion, trace, spans: trace?.spans.length ?? conversion.trace.spans.length, log };
}

/**
 * Sends the traces of consecutive updates of one stack in one export, then commits them in
 * one store transaction, telling `done` for each update whether this call committed it (false:
 * it already was). A collector that refuses the spans of several updates does not say whose
 * they were, so they are then sent (and committed) one update at a time. Throws to stop the
 * stack; the updates `done` was not called for are not committed.
 */
export async function sendAndCommit(
  deps: StackSyncDeps,
  stack: StackRef,
  batch: readonly PreparedUpdate[],
  cycle: CycleContext,
  done: (committed: boolean) => void,
): Promise<void> {
  if (deps.coordinator !== undefined && !deps.coordinator.holds(stack)) {
    // Lost while the events were read: sending now would only duplicate the new holder's trace.
    const first = batch[0]?.update.updateId;
    throw new ExporterError('STATE_LEASE_LOST', `update ${first} was not sent: this replica no longer holds the stack's lease`, {
      retryable: true,
      details: { deferred: true },
    });
  }
  throwIfSinkFailed(deps, cycle);
  // No traces when the sink is off (prepareUpdate builds none).
  const traces = batch.flatMap((p) => (p.trace === undefined ? [] : [p.trace]));
  if (traces.length > 0) {
    const outcome = await deps.sink.export(traces);
    if (outcome.code !== 'success') {
      const only = batch.length === 1 ? batch[0] : undefined;
      const what = only === undefined ? `${batch.length} updates (versions ${batch[0]?.update.version}-${batch.at(-1)?.update.version})` : `update ${only.update.updateId} (version ${only.update.version})`;
      const failure = new ExporterError('TRACE_EXPORT_FAILED', `spans of ${what} were not accepted: ${outcome.reason}`, {
        cause: outcome.error,
        retryable: outcome.retryable,
      });
      if (outcome.retryable) {
        for (const p of batch) deps.attempts.clear(p.update.updateId);
        cycle.sinkFailure = outcome.reason;
        throw failure;
      }
      if (only === undefined) {
        batch[0]?.log.debug({ reason: outcome.reason, updates: batch.length }, 'the collector refused spans of several updates; sending them one update at a time');
        for (const p of batch) await sendAndCommit(deps, stack, [p], cycle, done);
        return;
      }
      if (deps.attempts.fail(only.update.updateId, 'trace') < deps.maxUpdateAttempts) throw failure;
      deps.metrics.error('TRACE_EXPORT_FAILED');
      only.log.error({ err: failure, reason: outcome.reason }, 'the collector keeps rejecting the trace of this update; counting the update without its trace');
    }
  }
  const nowMs = deps.clock.now();
  const committed = await deps.store.commitUpdates(batch.map((p) => toCommit(deps, stack, p, nowMs)));
  for (const [i, p] of batch.entries()) {
    deps.attempts.clear(p.update.updateId);
    deps.follow?.streams.forget(stack, p.update.updateId);
    done(committed[i] === true);
    if (committed[i] !== true) continue;
    const endTime = p.update.endTime ?? p.update.startTime;
    deps.metrics.engineEvents(p.conversion.eventCounts);
    deps.metrics.updateExported(kindLabel(p.update.kind), Math.max(0, nowMs / 1000 - endTime));
    p.log.debug({ kind: p.update.kind, result: p.conversion.result, spans: p.conversion.trace.spans.length }, 'update exported');
  }
}

function toCommit(deps: StackSyncDeps, stack: StackRef, p: PreparedUpdate, nowMs: number): UpdateCommit {
  const { update, conversion } = p;
  const endTime = update.endTime ?? update.startTime;
  // Every preview kind is stored and labelled `preview`; the trace keeps the kind as reported.
  const kind = kindLabel(update.kind);
  return {
    update: { stack, updateId: update.updateId, kind, version: update.version, result: conversion.result, startTime: update.startTime, endTime },
    deltas: updateMetricDeltas({
      stack,
      kind: update.kind,
      result: conversion.result,
      startTime: update.startTime,
      endTime,
      resourceChanges: update.resourceChanges,
      operations: conversion.operations,
      policyViolations: conversion.policyViolations,
      updateId: update.updateId,
      detail: deps.metricDetail,
    }),
    exportedAtMs: nowMs,
    ...(deps.coordinator?.owner === undefined ? {} : { leaseOwner: deps.coordinator.owner }),
  };
}
