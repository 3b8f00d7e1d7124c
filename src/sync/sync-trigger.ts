import { setTimeout as sleep } from 'node:timers/promises';
import type { OrgConfig } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import { stackKey, type StackRef } from '../domain/stack.js';
import { errorCodeOf, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { WebhookMetrics } from '../metrics/webhook-metrics.js';
import type { PulumiCloudApi } from '../pulumi/pulumi-api.js';
import { KeyedQueue } from '../scheduler/keyed-queue.js';
import type { Coordinator } from '../state/coordinator.js';
import type { StackRecord, StateStore } from '../state/state-store.js';
import { withSelfSpan } from '../tracing/self-spans.js';
import { BackfillProgress } from './backfill-progress.js';
import { noopSyncMetrics } from './sync-metrics.js';
import { withPreviews } from './preview-sync.js';
import { stackFilter } from './stack-filter.js';
import { syncStack, type StackSyncDeps, type StackSyncResult } from './stack-sync.js';

export interface SyncTriggerDeps {
  readonly store: Pick<StateStore, 'getStack' | 'replaceOrgStacks'>;
  readonly api: Pick<PulumiCloudApi, 'listStacks'>;
  readonly orgs: readonly OrgConfig[];
  /** The app's per-stack queue, shared with the poll cycle (one sync at a time per stack). */
  readonly queue: KeyedQueue<StackSyncResult>;
  /** One sync of a stack known to the store (stackSyncer() in the app). */
  readonly sync: (stack: StackRecord, signal: AbortSignal) => Promise<StackSyncResult>;
  /** Several replicas: a stack whose lease another replica holds is left to it. */
  readonly coordinator?: Pick<Coordinator, 'holds'>;
  readonly metrics: WebhookMetrics & { error(code: ErrorCode): void; setStacksWatched(org: string, count: number): void };
  readonly logger: Logger;
  readonly clock: Clock;
  /** Requests for one stack within this window after the first become one sync. */
  readonly coalesceMillis: number;
}

/** accepted: a sync was scheduled; filtered: the org is not configured or the stack is excluded. */
export type TriggerDecision = 'accepted' | 'filtered';

/**
 * Turns "this stack changed" (a webhook delivery) into a sync of that stack, soon, through
 * the same per-stack queue as the poll cycle. A trigger carries no data: the sync reads the
 * stack's history from the API as a poll would, so late, repeated or reordered triggers only
 * cost API calls, and these are bounded: requests for a stack within `coalesceMillis` become
 * one, and the queue holds at most the running sync and one more per stack.
 *
 * A stack the store does not know yet is discovered by listing its org again (the whole
 * list, as the poll cycle writes it, so no other stack is forgotten); one listing per org
 * at a time. Never throws: outcomes are counted (pulumi_exporter_webhook_syncs_total) and logged.
 */
export class SyncTrigger {
  private readonly orgs = new Map<string, { org: OrgConfig; include: (project: string, stack: string) => boolean }>();
  /** Stacks whose coalescing window is open: a request for them joins the pending one. */
  private readonly windows = new Set<string>();
  private readonly listings = new KeyedQueue<void>();
  private readonly pending = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  constructor(private readonly deps: SyncTriggerDeps) {
    for (const org of deps.orgs) this.orgs.set(org.name, { org, include: stackFilter(org) });
  }

  /** Decides at once whether the stack is watched; if so its sync runs in the background. */
  request(ref: StackRef): TriggerDecision {
    const org = this.orgs.get(ref.org);
    if (org === undefined || !org.include(ref.project, ref.stack)) return 'filtered';
    if (this.abort.signal.aborted) return 'accepted';
    const key = stackKey(ref);
    if (this.windows.has(key)) {
      this.deps.metrics.webhookSync('coalesced');
      return 'accepted';
    }
    this.windows.add(key);
    const run = this.afterWindow(key)
      .then(() => this.enqueue(ref))
      .finally(() => this.pending.delete(run));
    this.pending.add(run);
    return 'accepted';
  }

  /** Resolves once every sync asked for so far has ended (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Stops scheduling, aborts running syncs and waits for them (at most timeoutMs). */
  async stop(timeoutMs: number): Promise<void> {
    this.abort.abort(new Error('the exporter is stopping'));
    const all = Promise.allSettled([...this.pending]);
    await Promise.race([all, sleep(timeoutMs, undefined, { ref: false })]);
  }

  private async afterWindow(key: string): Promise<void> {
    try {
      if (this.deps.coalesceMillis > 0) await sleep(this.deps.coalesceMillis, undefined, { signal: this.abort.signal });
    } catch {
      // Aborted: enqueue() sees the signal and does nothing.
    } finally {
      this.windows.delete(key);
    }
  }

  private async enqueue(ref: StackRef): Promise<void> {
    if (this.abort.signal.aborted) return;
    let ran = false;
    const shared = this.deps.queue.request(stackKey(ref), () => {
      ran = true;
      return this.run(ref);
    });
    // A shared run of the poll cycle's settles its own way; its outcome is the cycle's to report.
    await shared.catch(() => undefined);
    // The queue had a sync of this stack waiting (the poll cycle's): it covers this request.
    if (!ran) this.deps.metrics.webhookSync('coalesced');
  }

  /** One sync; resolves with a result the poll cycle may share (it never rejects). */
  private async run(ref: StackRef): Promise<StackSyncResult> {
    const { deps } = this;
    const log = deps.logger.child({ stack: stackKey(ref) });
    const skipped: StackSyncResult = { stack: ref, ok: true, exported: 0, skipped: 0, inProgress: 0 };
    try {
      let stack = await deps.store.getStack(ref);
      if (stack === undefined) {
        await this.listOrg(ref.org);
        stack = await deps.store.getStack(ref);
      }
      if (stack === undefined) {
        deps.metrics.webhookSync('unknown_stack');
        log.info('a webhook named a stack that its org does not list (deleted since, or not visible to the token); nothing synced');
        return skipped;
      }
      if (deps.coordinator !== undefined && !deps.coordinator.holds(stack)) {
        deps.metrics.webhookSync('not_held');
        log.debug('another replica holds this stack; it syncs it on its next cycle');
        return skipped;
      }
      const result = await deps.sync(stack, this.abort.signal);
      deps.metrics.webhookSync(result.ok ? 'synced' : 'failed');
      log.debug({ ok: result.ok, exported: result.exported, inProgress: result.inProgress }, 'webhook-triggered sync finished');
      return result;
    } catch (err) {
      // Listing or store errors (syncStack itself never rejects); the next poll cycle retries.
      const code = errorCodeOf(err);
      deps.metrics.webhookSync('failed');
      if (!this.abort.signal.aborted) {
        deps.metrics.error(code);
        log.warn({ err, code }, 'webhook-triggered sync failed; the next poll cycle retries it');
      }
      return { ...skipped, ok: false, error: err };
    }
  }

  /** Lists the org again and stores its (filtered) stack list, as the poll cycle does. */
  private listOrg(name: string): Promise<void> {
    return this.listings.request(name, async () => {
      const entry = this.orgs.get(name);
      if (entry === undefined) return;
      const stacks = (await this.deps.api.listStacks(name, { signal: this.abort.signal })).filter((s) => entry.include(s.project, s.stack));
      await this.deps.store.replaceOrgStacks(name, stacks, this.deps.clock.now());
      this.deps.metrics.setStacksWatched(name, stacks.length);
      this.deps.logger.debug({ org: name, stacks: stacks.length }, 'listed the org again for a stack a webhook named');
    });
  }
}

/**
 * The sync function of the app: syncStack with the poll cycle's deps, as a self-span of its
 * own; with previews on, the stack's previews after its updates, as the poll cycle does.
 */
export function stackSyncer(deps: StackSyncDeps & { readonly previews?: boolean }): (stack: StackRecord, signal: AbortSignal) => Promise<StackSyncResult> {
  return (stack, signal) => {
    // Progress of its own: a triggered sync is not part of a cycle's backfill accounting.
    const progress = new BackfillProgress({
      clock: deps.clock,
      logger: deps.logger,
      intervalMs: 60_000,
      metrics: noopSyncMetrics,
    });
    return withSelfSpan(
      'stack sync',
      { 'pulumi.org': stack.org, 'pulumi.project': stack.project, 'pulumi.stack': stack.stack, 'pulumi.sync.trigger': 'webhook' },
      async () => {
        const cycle = {};
        const updates = await syncStack(deps, stack, progress, signal, cycle);
        return deps.previews === true ? withPreviews(deps, stack, updates, progress, signal, cycle) : updates;
      },
      (r) => (r.ok ? undefined : (r.error ?? new Error('stack sync failed'))),
    );
  };
}
