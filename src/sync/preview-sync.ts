import { stackKey, type StackRef } from '../domain/stack.js';
import { isTerminal, type UpdateInfo } from '../domain/update.js';
import { errorCodeOf, isExporterError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { PreviewCursor, StackRecord } from '../state/state-store.js';
import type { BackfillProgress } from './backfill-progress.js';
import {
  backfillFloorSeconds,
  prepareUpdate,
  sendAndCommit,
  fetchEvents,
  throwIfSinkFailed,
  type CycleContext,
  type StackSyncDeps,
  type StackSyncResult,
} from './stack-sync.js';

/**
 * Previews (previews.enabled). They are not in the update history and do not move the stack
 * list's lastUpdate (shared pulumi-api.md 2.3, 2.5), so every watched stack is asked each
 * cycle: `updates/latest/previews`, plus `updates/{v}/previews` for each older version
 * the preview cursor has not finished (previews of a version that an update has since
 * superseded are no longer "latest"). Each terminal preview is exported like an update,
 * oldest first, through the same per-org ledger, so it is counted once across restarts,
 * replicas and re-created stacks; running ones hold the cursor and are read again.
 */

/** A preview listed, with whether it is finished (exported now or before, or found in the ledger). */
interface Listed {
  readonly preview: UpdateInfo;
  done: boolean;
}

/**
 * Exports the stack's new previews; returns how many this call committed. Throws to stop
 * the stack (the cursor then holds at the first preview not done, retried next cycle).
 */
export async function syncPreviews(
  deps: StackSyncDeps,
  ref: StackRef,
  progress: BackfillProgress,
  log: Logger,
  signal?: AbortSignal,
  cycle: CycleContext = {},
): Promise<number> {
  // Read again: the update sync just before may have moved the stack's cursor (version).
  const stack = await deps.store.getStack(ref);
  if (stack === undefined) return 0;
  const listed = await listNewPreviews(deps, stack, signal);
  let exported = 0;
  try {
    for (const entry of listed) {
      const p = entry.preview;
      if (!isTerminal(p.result)) continue;
      if (await deps.store.isExported(stack, p.updateId)) {
        entry.done = true;
        continue;
      }
      if (signal?.aborted) throw new Error('aborted');
      if (deps.coordinator !== undefined && !deps.coordinator.holds(stack)) return exported;
      // With the collector down in this cycle no events are read: the trace could not be sent.
      throwIfSinkFailed(deps, cycle);
      const read = await fetchEvents(deps, stack, p, progress, signal ?? new AbortController().signal);
      const previewLog = log.child({ previewId: p.updateId, version: p.version });
      const prepared = await prepareUpdate(deps, stack, p, read, previewLog, signal, cycle);
      await sendAndCommit(deps, stack, [prepared], cycle, (committed) => {
        if (committed) exported += 1;
      });
      entry.done = true;
    }
  } finally {
    const cursor = nextCursor(stack, listed);
    const moved = cursor.version !== stack.previewCursor?.version || cursor.startTime !== stack.previewCursor.startTime;
    if (moved) await deps.store.setPreviewCursor(stack, cursor);
  }
  return exported;
}

/** Previews not known to be done, oldest first: the latest version's and those of older versions the cursor left open. */
async function listNewPreviews(deps: StackSyncDeps, stack: StackRecord, signal?: AbortSignal): Promise<Listed[]> {
  const cursor = stack.previewCursor;
  const floor = backfillFloorSeconds(stack, deps.backfillDays);
  const notBefore = Math.max(cursor?.startTime ?? 0, floor ?? 0);
  const bounds = notBefore > 0 ? { notBeforeSeconds: notBefore } : {};
  const latest = await orEmptyIfNotFound(deps.api.previewsSince(stack, { ...bounds, signal }));
  const byId = new Map<string, UpdateInfo>(latest.map((p) => [p.updateId, p]));
  if (cursor !== undefined) {
    // Versions the cursor has not finished and that are no longer the latest.
    const current = Math.max(stack.cursorVersion, ...latest.map((p) => p.version));
    for (let version = cursor.version; version < current; version++) {
      for (const p of await orEmptyIfNotFound(deps.api.previewsSince(stack, { version, ...bounds, signal }))) byId.set(p.updateId, p);
    }
  }
  return [...byId.values()]
    .sort((a, b) => a.startTime - b.startTime || a.version - b.version || (a.updateId < b.updateId ? -1 : 1))
    .map((preview) => ({ preview, done: false }));
}

/**
 * A listing answered 404 has nothing to list: the service answers `updates/latest` with 404
 * for a stack never updated (shared pulumi-api.md 2.4), and a version may have no previews
 * route. Any other error stops the stack.
 */
async function orEmptyIfNotFound(listing: Promise<UpdateInfo[]>): Promise<UpdateInfo[]> {
  try {
    return await listing;
  } catch (err) {
    if (errorCodeOf(err) === 'API_NOT_FOUND') return [];
    throw err;
  }
}

/**
 * Where the next listing resumes: at the oldest preview not done (running, or not exported
 * because the stack stopped), else at the newest start seen (previews of that second are
 * listed again and found in the ledger). The version is that preview's, else the newest known.
 */
function nextCursor(stack: StackRecord, listed: readonly Listed[]): PreviewCursor {
  // Not the old cursor's version: a stack deleted and created again restarts its versions.
  const versions = [stack.cursorVersion, ...listed.map((l) => l.preview.version)];
  const open = listed.find((l) => !l.done);
  if (open !== undefined) {
    const openVersion = Math.min(...listed.filter((l) => !l.done).map((l) => l.preview.version));
    return { version: openVersion, startTime: open.preview.startTime };
  }
  const newest = listed.at(-1);
  if (newest !== undefined) return { version: Math.max(...versions), startTime: newest.preview.startTime };
  if (stack.previewCursor !== undefined && stack.previewCursor.version >= stack.cursorVersion) return stack.previewCursor;
  return { version: Math.max(...versions), startTime: stack.previewCursor?.startTime ?? 0 };
}

/**
 * The previews of one stack synced after its update sync (or alone, for a stack whose
 * history did not change), as a stack sync result. Never rejects: a failure is logged and
 * counted like a failed stack sync, and retried next cycle.
 */
export async function withPreviews(
  deps: StackSyncDeps,
  stack: StackRef,
  updates: StackSyncResult,
  progress: BackfillProgress,
  signal?: AbortSignal,
  cycle: CycleContext = {},
): Promise<StackSyncResult> {
  if (!updates.ok) return updates;
  const log = deps.logger.child({ stack: stackKey(stack) });
  try {
    const exported = await syncPreviews(deps, stack, progress, log, signal, cycle);
    return { ...updates, exported: updates.exported + exported };
  } catch (err) {
    const code = errorCodeOf(err);
    if (signal?.aborted || (isExporterError(err) && err.details['deferred'] === true)) {
      log.debug({ code, error: err instanceof Error ? err.message : String(err) }, 'preview sync stopped early; it resumes next cycle');
    } else {
      deps.metrics.error(code);
      log.warn({ ...(isExporterError(err) ? { error: err.message } : { err }), code }, 'preview sync failed; it is retried next cycle');
    }
    return { ...updates, ok: false, error: err };
  }
}
