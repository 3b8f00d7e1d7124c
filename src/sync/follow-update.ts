import { convertUpdate, type ConversionOptions } from '../conversion/convert-update.js';
import type { Clock } from '../domain/clock.js';
import type { EngineEvent } from '../domain/engine-event.js';
import { stackKey, type StackRef } from '../domain/stack.js';
import type { UpdateInfo } from '../domain/update.js';
import { errorCodeOf, isExporterError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { PulumiCloudApi } from '../pulumi/pulumi-api.js';
import type { Coordinator } from '../state/coordinator.js';
import type { StateStore } from '../state/state-store.js';
import type { SpanSink } from '../tracing/span-sink.js';
import type { SyncMetrics } from './sync-metrics.js';

/** What has been read of one running update's event stream in this process. */
export interface FollowedStream {
  readonly events: EngineEvent[];
  /** Where the next read resumes; undefined before the first read, null once the stream ended. */
  token: string | null | undefined;
  /** Unix ms of the last read that brought new events (or of the first read). */
  lastNewEventsMs: number;
}

/**
 * The event streams of the running updates this process follows, so each round reads only
 * what is new (shared pulumi-api.md section 2.7: the same continuation token comes back
 * while nothing new has arrived). After a restart a stream is read again from its start:
 * the conversion needs every event (span ids count event positions, a step's end pairs with
 * its start); what was already sent comes from the store's follow record.
 */
export class FollowedStreams {
  private readonly streams = new Map<string, FollowedStream>();

  get(stack: StackRef, updateId: string): FollowedStream | undefined {
    return this.streams.get(keyOf(stack, updateId));
  }

  open(stack: StackRef, updateId: string, nowMs: number): FollowedStream {
    const key = keyOf(stack, updateId);
    let stream = this.streams.get(key);
    if (stream === undefined) {
      stream = { events: [], token: undefined, lastNewEventsMs: nowMs };
      this.streams.set(key, stream);
    }
    return stream;
  }

  forget(stack: StackRef, updateId: string): void {
    this.streams.delete(keyOf(stack, updateId));
  }

  /** Drops the streams of updates that are no longer running (ended, or their stack is gone). */
  retainOnly(running: readonly { readonly stack: StackRef; readonly updateId: string }[]): void {
    const keep = new Set(running.map((r) => keyOf(r.stack, r.updateId)));
    for (const key of this.streams.keys()) if (!keep.has(key)) this.streams.delete(key);
  }

  /** True when the update brought no new event for `idleMs` (its stack is then left to the poll cycle). */
  idle(stack: StackRef, updateId: string, nowMs: number, idleMs: number): boolean {
    const stream = this.get(stack, updateId);
    return stream !== undefined && nowMs - stream.lastNewEventsMs >= idleMs;
  }

  get size(): number {
    return this.streams.size;
  }
}

/** What following needs beyond a stack sync's dependencies. */
export interface FollowContext {
  readonly streams: FollowedStreams;
  /** Counts step spans sent while their update was running (pulumi_exporter_spans_followed_total). */
  readonly spansFollowed: (count: number) => void;
}

/** The part of a stack sync's dependencies a follow round uses. */
export interface FollowDeps {
  readonly api: PulumiCloudApi;
  readonly store: StateStore;
  readonly sink: SpanSink;
  readonly metrics: Pick<SyncMetrics, 'error'>;
  readonly clock: Clock;
  readonly conversion: ConversionOptions;
  readonly coordinator?: Coordinator;
}

function keyOf(stack: StackRef, updateId: string): string {
  return `${stackKey(stack)}\n${updateId}`;
}

/**
 * One follow round of a running update: reads the events that arrived since the last round,
 * sends the step spans that became final (their step ended; see ConversionResult.finalSpanIds)
 * and were not sent before, then records the position and the spans sent in the store. The
 * root span and every other span wait for the update's end, when the stack sync exports them
 * without the spans recorded here. Best effort: a failure is logged and counted, and those
 * spans go out in a later round or at the end. Returns the spans sent.
 */
export async function followUpdate(
  deps: FollowDeps,
  follow: FollowContext,
  stack: StackRef,
  update: UpdateInfo,
  log: Logger,
  signal?: AbortSignal,
): Promise<number> {
  if (!deps.sink.enabled) return 0;
  const stream = follow.streams.open(stack, update.updateId, deps.clock.now());
  try {
    const stored = await deps.store.readFollow(stack, update.updateId);
    const before = stream.events.length;
    if (stream.token !== null) {
      const pages = deps.api.engineEvents(stack, update.updateId, {
        ...(stream.token === undefined ? {} : { continuationToken: stream.token }),
        inProgress: true,
        signal,
      });
      // Events and token move together page by page, so a failed read leaves a consistent stream.
      for await (const page of pages) {
        for (const event of page.events) stream.events.push(event);
        stream.token = page.continuationToken;
      }
    }
    if (stream.events.length > before) stream.lastNewEventsMs = deps.clock.now();
    // Nothing new since the position recorded: nothing can have become final.
    else if (stored !== undefined && stored.eventsRead === stream.events.length) return 0;

    const conversion = convertUpdate(update, stream.events, deps.conversion);
    const sent = new Set(stored?.sentSpanIds ?? []);
    const ready = conversion.trace.spans.filter((s) => conversion.finalSpanIds.has(s.spanId) && !sent.has(s.spanId));
    if (ready.length > 0) {
      if (deps.coordinator !== undefined && !deps.coordinator.holds(stack)) return 0;
      const outcome = await deps.sink.export([{ ...conversion.trace, spans: ready }]);
      if (outcome.code !== 'success') {
        deps.metrics.error('TRACE_EXPORT_FAILED');
        log.warn({ reason: outcome.reason, spans: ready.length }, 'spans of a running update were not accepted; they are sent again later');
        return 0;
      }
    }
    await deps.store.recordFollow({
      stack,
      updateId: update.updateId,
      eventsRead: stream.events.length,
      continuationToken: stream.token ?? null,
      sentSpanIds: ready.map((s) => s.spanId),
    });
    if (ready.length > 0) {
      follow.spansFollowed(ready.length);
      log.debug({ spans: ready.length, events: stream.events.length }, 'sent the spans of finished steps of a running update');
    }
    return ready.length;
  } catch (err) {
    if (signal?.aborted) return 0;
    // Read again from the start next round: a position the service no longer accepts cannot block following.
    follow.streams.forget(stack, update.updateId);
    const code = errorCodeOf(err);
    if (code === 'API_NOT_FOUND') {
      // No event stream (yet): nothing to follow; its end is exported from the history entry.
      log.debug({ code }, 'the running update has no engine events to follow');
      return 0;
    }
    deps.metrics.error(code);
    log.warn({ ...(isExporterError(err) ? { error: err.message } : { err }), code }, 'following a running update failed; it is followed again next round');
    return 0;
  }
}
