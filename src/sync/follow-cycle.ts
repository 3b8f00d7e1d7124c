import { stackKey, type StackRef } from '../domain/stack.js';
import { mapWithConcurrency } from '../scheduler/concurrency.js';
import type { KeyedQueue } from '../scheduler/keyed-queue.js';
import type { StackRecord } from '../state/state-store.js';
import type { BackfillProgress } from './backfill-progress.js';
import type { FollowContext } from './follow-update.js';
import { syncStack, type StackSyncDeps, type StackSyncResult } from './stack-sync.js';

export interface FollowCycleDeps extends StackSyncDeps {
  readonly follow: FollowContext;
  /** The app's queue: a stack is never synced by the follower beside the poll cycle or a webhook. */
  readonly syncQueue: KeyedQueue<StackSyncResult>;
  readonly stackConcurrency: number;
  /** Progress of the follower's syncs; kept apart from the poll cycle's backfill progress. */
  readonly followProgress: BackfillProgress;
  /**
   * A running update that brought no new event for this long is left to the poll cycle (a
   * resource that takes an hour to create, or a CLI that died) until the poll sees it move.
   */
  readonly followIdleMs: number;
}

export interface FollowCycleResult {
  /** Stacks synced in this round. */
  readonly stacks: number;
  readonly failed: number;
}

/**
 * One follow round: syncs the stacks that have an update in progress (and whose lease this
 * replica holds), each through the shared queue. A stack sync follows its running updates
 * (follow-update.ts), so their finished steps' spans go out within one follow interval, and
 * exports an update that ended at once, root span included. Rejects only when the store
 * cannot be read (the job logs and counts it); a failed stack sync is in its result.
 */
export async function runFollowCycle(deps: FollowCycleDeps, signal?: AbortSignal): Promise<FollowCycleResult> {
  const running = await deps.store.listInProgress();
  deps.follow.streams.retainOnly(running);
  const now = deps.clock.now();
  const due = new Map<string, StackRef>();
  for (const r of running) {
    if (deps.follow.streams.idle(r.stack, r.updateId, now, deps.followIdleMs)) continue;
    if (deps.coordinator !== undefined && !deps.coordinator.holds(r.stack)) continue;
    due.set(stackKey(r.stack), r.stack);
  }
  const stacks: StackRecord[] = [];
  for (const ref of due.values()) {
    const record = await deps.store.getStack(ref);
    if (record !== undefined) stacks.push(record);
  }
  const settled = await mapWithConcurrency(
    stacks,
    deps.stackConcurrency,
    (stack) => deps.syncQueue.request(stackKey(stack), () => syncStack(deps, stack, deps.followProgress, signal)),
    signal,
  );
  return { stacks: stacks.length, failed: settled.filter((r) => r.status === 'rejected' || !r.value.ok).length };
}
