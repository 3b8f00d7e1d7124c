import { stackKey } from '../domain/stack.js';
import { errorCodeOf } from '../errors.js';
import type { OrgConfig } from '../config/schema.js';
import { mapWithConcurrency } from '../scheduler/concurrency.js';
import { KeyedQueue } from '../scheduler/keyed-queue.js';
import type { StackRecord } from '../state/state-store.js';
import { BackfillProgress } from './backfill-progress.js';
import { syncStack, type CycleContext, type StackSyncDeps, type StackSyncResult } from './stack-sync.js';
import { withPreviews } from './preview-sync.js';
import { withSelfSpan } from '../tracing/self-spans.js';
import { stackFilter } from './stack-filter.js';

export interface PollCycleDeps extends StackSyncDeps {
  readonly orgs: readonly OrgConfig[];
  readonly stackConcurrency: number;
  readonly progressLogIntervalMs: number;
  /** Progress across cycles (the app's, for the status page); a fresh one per cycle when absent. */
  readonly progress?: BackfillProgress;
  /**
   * Serialises the syncs of each stack with those asked for outside the cycle (the app's,
   * shared with every other trigger); a fresh one per cycle when absent.
   */
  readonly syncQueue?: KeyedQueue<StackSyncResult>;
  /** previews.enabled: every watched stack's previews are listed each cycle (preview-sync.ts). */
  readonly previews?: boolean;
}

export interface PollCycleResult {
  /** success: every org listed and every changed stack synced. */
  readonly result: 'success' | 'failure';
  /** Every configured org's stack list was read (the readiness condition). */
  readonly listedAllOrgs: boolean;
  /** Orgs whose stack list could not be read in this cycle, with the error code. */
  readonly orgListingErrors: ReadonlyMap<string, string>;
  readonly stacksWatched: number;
  readonly stacksSynced: number;
  readonly stacksFailed: number;
  readonly updatesExported: number;
  readonly backlog: number;
  readonly durationSeconds: number;
  readonly finishedAtMs: number;
}

/**
 * A stack needs a history call only when its lastUpdate moved since it was last synced
 * or it has an update in progress; a cycle over unchanged stacks costs the list calls alone.
 */
export function needsSync(stack: StackRecord, inProgressKeys: ReadonlySet<string>): boolean {
  return stack.lastUpdate !== stack.syncedLastUpdate || inProgressKeys.has(stackKey(stack));
}

/** One complete poll cycle over every configured org. Never throws. */
export async function runPollCycle(deps: PollCycleDeps, signal?: AbortSignal): Promise<PollCycleResult> {
  const started = deps.clock.now();
  const log = deps.logger.child({ module: 'poll' });
  let listedAllOrgs = true;
  const listedOrgs = new Set<string>();
  const orgListingErrors = new Map<string, string>();
  const progress =
    deps.progress ?? new BackfillProgress({ clock: deps.clock, logger: log, intervalMs: deps.progressLogIntervalMs, metrics: deps.metrics });
  progress.beginCycle();

  try {
    // Stacks of orgs no longer configured: forget them so their gauges disappear.
    const configured = new Set(deps.orgs.map((o) => o.name));
    const stale = new Set((await deps.store.listStacks()).map((s) => s.org).filter((o) => !configured.has(o)));
    for (const org of stale) {
      await deps.store.replaceOrgStacks(org, [], deps.clock.now());
      log.info({ org }, 'forgot the stacks of an org that is no longer configured');
    }
  } catch (err) {
    const code = errorCodeOf(err);
    deps.metrics.error(code);
    log.warn({ err, code }, 'forgetting stacks of unconfigured orgs failed');
  }

  for (const org of deps.orgs) {
    try {
      const include = stackFilter(org);
      const stacks = (await deps.api.listStacks(org.name, { signal })).filter((s) => include(s.project, s.stack));
      await deps.store.replaceOrgStacks(org.name, stacks, deps.clock.now());
      deps.metrics.setStacksWatched(org.name, stacks.length);
      listedOrgs.add(org.name);
      progress.orgListed(stacks.length);
    } catch (err) {
      listedAllOrgs = false;
      if (signal?.aborted) break;
      const code = errorCodeOf(err);
      orgListingErrors.set(org.name, code);
      deps.metrics.error(code);
      log.warn({ err, code, org: org.name }, 'listing the stacks of an org failed');
    }
  }

  let results: StackSyncResult[] = [];
  const cycle: CycleContext = {};
  const queue = deps.syncQueue ?? new KeyedQueue<StackSyncResult>();
  let watched = 0;
  try {
    const stored = await deps.store.listStacks();
    // Several replicas: this one syncs only the stacks whose lease it holds. Shares are
    // counted over every listed stack, so an org whose listing failed here moves no lease.
    const held = deps.coordinator === undefined ? stored : await deps.coordinator.claimStacks(stored);
    const all = held.filter((s) => listedOrgs.has(s.org));
    watched = all.length;
    const inProgressKeys = new Set((await deps.store.listInProgress()).map((u) => stackKey(u.stack)));
    const changed = all.filter((s) => needsSync(s, inProgressKeys));
    progress.listingFinished(listedAllOrgs, changed.length);
    // Previews do not move lastUpdate: with them on, unchanged stacks are visited for them alone.
    const visited = deps.previews === true ? all : changed;
    const settled = await mapWithConcurrency(
      visited,
      deps.stackConcurrency,
      (stack) => {
        const history = needsSync(stack, inProgressKeys);
        const run = async (): Promise<StackSyncResult> => {
          const updates = history ? await syncStack(deps, stack, progress, signal, cycle) : { stack, ok: true, exported: 0, skipped: 0, inProgress: 0 };
          return deps.previews === true ? withPreviews(deps, stack, updates, progress, signal, cycle) : updates;
        };
        return withSelfSpan(
          'stack sync',
          { 'pulumi.org': stack.org, 'pulumi.project': stack.project, 'pulumi.stack': stack.stack },
          // A sync of this stack already running (asked for outside the cycle) is waited for first.
          () => queue.request(stackKey(stack), run),
          (r) => (r.ok ? undefined : (r.error ?? new Error('stack sync failed'))),
        ).finally(() => {
          if (history) progress.stackDone(stack);
        });
      },
      signal,
    );
    results = settled.map((r, i) =>
      r.status === 'fulfilled' ? r.value : { stack: visited[i]!, ok: false, exported: 0, skipped: 0, inProgress: 0, error: r.reason },
    );
  } catch (err) {
    listedAllOrgs = false;
    const code = errorCodeOf(err);
    deps.metrics.error(code);
    log.error({ err, code }, 'poll cycle failed reading the state store');
  }

  const failed = results.filter((r) => !r.ok).length;
  const exported = results.reduce((n, r) => n + r.exported, 0);
  const finishedAtMs = deps.clock.now();
  const durationSeconds = (finishedAtMs - started) / 1000;
  const result = listedAllOrgs && failed === 0 ? 'success' : 'failure';
  const backlog = progress.remaining();
  deps.metrics.setBacklog(backlog);
  deps.metrics.pollFinished(result, durationSeconds, finishedAtMs);
  if (cycle.sinkFailure !== undefined && !signal?.aborted) {
    log.warn({ reason: cycle.sinkFailure, backlog }, 'the trace collector failed; exporting the waiting updates is retried next cycle');
  }
  const snap = progress.snapshot();
  log.info(
    { result, stacksWatched: watched, stacksSynced: results.length - failed, stacksFailed: failed, updatesExported: exported, events: snap.events, backlog, durationSeconds },
    'poll cycle finished',
  );
  progress.finishCycle(result);
  return {
    result,
    listedAllOrgs,
    orgListingErrors,
    stacksWatched: watched,
    stacksSynced: results.length - failed,
    stacksFailed: failed,
    updatesExported: exported,
    backlog,
    durationSeconds,
    finishedAtMs,
  };
}
