import { convertUpdate, type ConversionOptions } from '../conversion/convert-update.js';
import type { Clock } from '../domain/clock.js';
import type { EngineEvent } from '../domain/engine-event.js';
import { stackKey, type StackRef } from '../domain/stack.js';
import { isTerminal, type UpdateInfo } from '../domain/update.js';
import { ExporterError, errorCodeOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { updateMetricDeltas } from '../metrics/update-deltas.js';
import type { PulumiCloudApi } from '../pulumi/pulumi-api.js';
import type { InProgressRecord, StackRecord, StateStore } from '../state/state-store.js';
import type { SpanSink } from '../tracing/span-sink.js';
import type { BackfillProgress } from './backfill-progress.js';
import type { SyncMetrics } from './sync-metrics.js';

export interface StackSyncDeps {
  readonly api: PulumiCloudApi;
  readonly store: StateStore;
  readonly sink: SpanSink;
  readonly metrics: SyncMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly conversion: ConversionOptions;
  readonly durationByStack: boolean;
  /** 0 = the whole history. */
  readonly backfillDays: number;
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
 * The oldest update start time this stack's backfill looks at. Anchored to when the
 * exporter first saw the stack, so restarts do not move the window.
 */
export function backfillFloorSeconds(stack: StackRecord, backfillDays: number): number | undefined {
  if (backfillDays <= 0) return undefined;
  return Math.floor(stack.firstSeenMs / 1000 - backfillDays * 86_400);
}

async function readAllEvents(api: PulumiCloudApi, ref: StackRef, updateId: string): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  for await (const page of api.engineEvents(ref, updateId)) events.push(...page.events);
  return events;
}

/**
 * Brings one stack up to date: pages its history newest-first down to the cursor,
 * records running updates, then exports each new terminal update oldest first
 * (events -> trace -> sink -> metrics + cursor in one store transaction). Stops at the
 * first update that cannot be exported, so nothing is skipped; the next cycle resumes there.
 */
export async function syncStack(
  deps: StackSyncDeps,
  stack: StackRecord,
  progress: BackfillProgress,
  signal?: AbortSignal,
): Promise<StackSyncResult> {
  const log = deps.logger.child({ stack: stackKey(stack) });
  let exported = 0;
  let skipped = 0;
  let inProgress = 0;
  try {
    const floor = backfillFloorSeconds(stack, deps.backfillDays);
    const bounds = floor === undefined ? {} : { notBeforeSeconds: floor };
    let history = await deps.api.historySince(stack, { afterVersion: stack.cursorVersion, ...bounds });
    if (history.length === 0 && stack.cursorVersion > 0 && stack.lastUpdate !== stack.syncedLastUpdate) {
      // lastUpdate moved but nothing is newer than the cursor: a stack deleted and created
      // again under the same name restarts at version 1. Re-read it from the start; the
      // exported-update ledger keeps the old updates from being counted again.
      const newest = (await deps.api.listUpdates(stack, 1, 1)).updates[0];
      if (newest !== undefined && newest.version < stack.cursorVersion) {
        log.warn({ cursorVersion: stack.cursorVersion, newestVersion: newest.version }, 'stack history restarted below the cursor (re-created stack?); reading it from the start');
        history = await deps.api.historySince(stack, { afterVersion: 0, ...bounds });
      }
    }
    const window = floor === undefined ? history : history.filter((u) => u.startTime >= floor);
    const running: InProgressRecord[] = window
      .filter((u) => !isTerminal(u.result))
      .map((u) => ({ stack, updateId: u.updateId, kind: u.kind, version: u.version, startTime: u.startTime }));
    inProgress = running.length;
    await deps.store.setInProgress(stack, running);

    const terminal = window.filter((u) => isTerminal(u.result)).reverse();
    const fresh: UpdateInfo[] = [];
    for (const u of terminal) {
      if (await deps.store.isExported(stack, u.updateId)) skipped += 1;
      else fresh.push(u);
    }
    progress.discovered(fresh.length);

    for (const update of fresh) {
      if (signal?.aborted) return { stack, ok: false, exported, skipped, inProgress, error: new Error('aborted') };
      const ulog = log.child({ updateId: update.updateId, version: update.version });
      const events = await readAllEvents(deps.api, stack, update.updateId);
      const conversion = convertUpdate(update, events, deps.conversion);
      deps.metrics.engineEvents(conversion.eventCounts);
      if (deps.sink.enabled) {
        const outcome = await deps.sink.export(conversion.trace);
        if (outcome.code !== 'success') {
          throw new ExporterError(
            'TRACE_EXPORT_FAILED',
            `spans of update ${update.updateId} (version ${update.version}) were not accepted: ${outcome.reason}`,
            { cause: outcome.error, retryable: outcome.retryable },
          );
        }
      }
      const endTime = update.endTime ?? update.startTime;
      const deltas = updateMetricDeltas({
        stack,
        kind: update.kind,
        result: conversion.result,
        startTime: update.startTime,
        endTime,
        resourceChanges: update.resourceChanges,
        operations: conversion.operations,
        policyViolations: conversion.policyViolations,
        durationByStack: deps.durationByStack,
      });
      const nowMs = deps.clock.now();
      const committed = await deps.store.commitUpdate({
        update: {
          stack,
          updateId: update.updateId,
          kind: update.kind,
          version: update.version,
          result: conversion.result,
          startTime: update.startTime,
          endTime,
        },
        deltas,
        exportedAtMs: nowMs,
      });
      if (committed) {
        exported += 1;
        deps.metrics.updateExported(update.kind, Math.max(0, nowMs / 1000 - endTime));
        ulog.debug({ kind: update.kind, result: conversion.result, spans: conversion.trace.spans.length }, 'update exported');
      } else {
        skipped += 1;
      }
      progress.exported(events.length);
    }
    await deps.store.markStackSynced(stack, stack.lastUpdate);
    return { stack, ok: true, exported, skipped, inProgress };
  } catch (err) {
    const code = errorCodeOf(err);
    deps.metrics.error(code);
    log.warn({ err, code, exported }, 'stack sync failed; it is retried next cycle');
    return { stack, ok: false, exported, skipped, inProgress, error: err };
  }
}
