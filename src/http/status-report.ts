import { traceIdFor } from '../conversion/trace-ids.js';
import type { BackfillStatus } from '../domain/backfill-status.js';
import { consoleUrlOf, isPreviewKind } from '../conversion/update-attributes.js';
import type { StackRef } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';
import type { StateStore } from '../state/state-store.js';

/** What the status page (`GET /`) and `/status.json` show. Plain data: the JSON variant is this object. */
export interface StatusReport {
  readonly version: string;
  /** ISO 8601. */
  readonly generatedAt: string;
  readonly ready: boolean;
  readonly lastPoll?: LastPollStatus;
  /** The poll cycle running now (first-run progress and its ETA) and the last finished backfill. */
  readonly backfill?: BackfillStatus;
  readonly orgs: readonly OrgStatus[];
  readonly recentUpdates: readonly RecentUpdateStatus[];
  /** Stacks whose newest completed update (of any kind but preview) did not succeed. */
  readonly failingStacks: readonly FailingStackStatus[];
  readonly inProgress: readonly InProgressStatus[];
}

export interface LastPollStatus {
  readonly result: string;
  /** ISO 8601. */
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly stacksFailed: number;
  readonly updatesExported: number;
  /** Updates known but not exported yet when the cycle ended. */
  readonly backlog: number;
}

export interface OrgStatus {
  readonly org: string;
  readonly stacksWatched: number;
  readonly inProgress: number;
  readonly failingStacks: number;
  /** The error code of the last poll's stack listing of this org, when it failed. */
  readonly listingError?: string;
}

export interface UpdateLinks {
  readonly traceId: string;
  /** From `traces.linkTemplate`; absent when no template is configured. */
  readonly traceUrl?: string;
  /** The update in the Pulumi console. */
  readonly consoleUrl: string;
}

export interface RecentUpdateStatus extends StackRef, UpdateLinks {
  readonly updateId: string;
  readonly version: number;
  readonly kind: string;
  readonly result: string;
  /** ISO 8601. */
  readonly startedAt: string;
  /** ISO 8601. */
  readonly endedAt: string;
  readonly durationSeconds: number;
}

export interface FailingStackStatus extends StackRef {
  readonly kind: string;
  readonly result: string;
  /** ISO 8601. */
  readonly endedAt: string;
}

export interface InProgressStatus extends StackRef, UpdateLinks {
  readonly updateId: string;
  readonly version: number;
  readonly kind: string;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly runningSeconds: number;
}

export interface StatusSources {
  readonly store: StateStore;
  readonly version: string;
  readonly ready: boolean;
  readonly nowMs: number;
  readonly lastPoll?: LastPollStatus;
  readonly backfill?: BackfillStatus;
  /** The configured orgs: each gets a row, even before its first listing. */
  readonly orgs: readonly string[];
  /** Org -> error code of its failed listing in the last poll. */
  readonly orgListingErrors?: ReadonlyMap<string, string>;
  readonly consoleUrl: string;
  /** e.g. `http://jaeger:16686/trace/{traceId}`; `{traceId}` is replaced by the 32-hex trace id. */
  readonly traceLinkTemplate?: string;
  /** How many recent updates to list. */
  readonly recentLimit: number;
}

const iso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

function links(sources: StatusSources, stack: StackRef, updateId: string, version: number, kind: string): UpdateLinks {
  const traceId = traceIdFor(stack, updateId);
  return {
    traceId,
    ...(sources.traceLinkTemplate === undefined ? {} : { traceUrl: sources.traceLinkTemplate.replaceAll('{traceId}', traceId) }),
    consoleUrl: consoleUrlOf({ stack, updateId, version }, sources.consoleUrl, isPreviewKind(kind)),
  };
}

const ref = (s: StackRef): StackRef => ({ org: s.org, project: s.project, stack: s.stack });

/** Reads what the status page shows from the store; rejects when the store does. */
export async function buildStatusReport(sources: StatusSources): Promise<StatusReport> {
  const { store } = sources;
  const [stacks, running, lastUpdates, recent] = await Promise.all([
    store.listStacks(),
    store.listInProgress(),
    store.readLastUpdates(),
    store.listRecentUpdates(sources.recentLimit),
  ]);
  const watched = new Set(stacks.map(stackKey));

  // The newest completed non-preview update per watched stack decides whether it is failing.
  const newest = new Map<string, (typeof lastUpdates)[number]>();
  for (const row of lastUpdates) {
    if (isPreviewKind(row.kind) || !watched.has(stackKey(row.stack))) continue;
    const key = stackKey(row.stack);
    const seen = newest.get(key);
    if (seen === undefined || row.endTime > seen.endTime) newest.set(key, row);
  }
  const failingStacks: FailingStackStatus[] = [...newest.values()]
    .filter((row) => row.result !== 'succeeded')
    .sort((a, b) => b.endTime - a.endTime || stackKey(a.stack).localeCompare(stackKey(b.stack)))
    .map((row) => ({ ...ref(row.stack), kind: row.kind, result: row.result, endedAt: iso(row.endTime) }));

  const nowSeconds = sources.nowMs / 1000;
  const inProgress: InProgressStatus[] = running
    .filter((u) => watched.has(stackKey(u.stack)))
    .sort((a, b) => a.startTime - b.startTime)
    .map((u) => ({
      ...ref(u.stack),
      updateId: u.updateId,
      version: u.version,
      kind: u.kind,
      startedAt: iso(u.startTime),
      runningSeconds: Math.max(0, Math.round(nowSeconds - u.startTime)),
      ...links(sources, u.stack, u.updateId, u.version, u.kind),
    }));

  const orgNames = new Set([...sources.orgs, ...stacks.map((s) => s.org), ...(sources.orgListingErrors?.keys() ?? [])]);
  const count = <T extends StackRef>(rows: readonly T[], org: string): number => rows.filter((r) => r.org === org).length;
  const orgs: OrgStatus[] = [...orgNames].sort().map((org) => {
    const listingError = sources.orgListingErrors?.get(org);
    return {
      org,
      stacksWatched: count(stacks, org),
      inProgress: count(inProgress, org),
      failingStacks: count(failingStacks, org),
      ...(listingError === undefined ? {} : { listingError }),
    };
  });

  return {
    version: sources.version,
    generatedAt: new Date(sources.nowMs).toISOString(),
    ready: sources.ready,
    ...(sources.lastPoll === undefined ? {} : { lastPoll: sources.lastPoll }),
    ...(sources.backfill === undefined ? {} : { backfill: sources.backfill }),
    orgs,
    recentUpdates: recent.map((u) => ({
      ...ref(u.stack),
      updateId: u.updateId,
      version: u.version,
      kind: u.kind,
      result: u.result,
      startedAt: iso(u.startTime),
      endedAt: iso(u.endTime),
      durationSeconds: Math.max(0, u.endTime - u.startTime),
      ...links(sources, u.stack, u.updateId, u.version, u.kind),
    })),
    failingStacks,
    inProgress,
  };
}
