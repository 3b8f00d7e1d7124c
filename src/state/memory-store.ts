import { labelsKey } from '../domain/metric-delta.js';
import type { Exemplar, Labels } from '../domain/metric-delta.js';
import type { StackRef, StackSummary } from '../domain/stack.js';
import { ExporterError } from '../errors.js';
import {
  bucketIndex,
  bucketMismatch,
  canonicalLabels,
  checkCommit,
  checkCounterDelta,
  checkCursorVersion,
  checkObservation,
  checkOrg,
  checkSameStack,
  sameBuckets,
} from './delta-rules.js';
import type {
  CounterRow,
  HistogramRow,
  InProgressRecord,
  LastSuccessRow,
  LastUpdateRow,
  StackRecord,
  StateStore,
  UpdateCommit,
} from './state-store.js';

interface MutableHistogram {
  readonly name: string;
  readonly labels: Labels;
  readonly buckets: readonly number[];
  readonly bucketCounts: number[];
  sum: number;
  count: number;
  readonly exemplars: (Exemplar | null)[];
}

function refKey(ref: StackRef): string {
  return JSON.stringify([ref.org, ref.project, ref.stack]);
}

function refOf(ref: StackRef): StackRef {
  return { org: ref.org, project: ref.project, stack: ref.stack };
}

/** The ledger is per org: Pulumi keeps update ids when a stack is renamed. */
function ledgerKey(org: string, updateId: string): string {
  return JSON.stringify([org, updateId]);
}

function seriesKey(name: string, labels: Labels): string {
  return JSON.stringify([name, labelsKey(labels)]);
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A StateStore held in process memory, with the same semantics as the durable stores
 * (it passes the shared contract suite). For unit tests of the layers above; nothing
 * survives the process.
 */
export class MemoryStateStore implements StateStore {
  private closed = false;
  private readonly stacks = new Map<string, StackRecord>();
  /** Keys of stacks the org list no longer lists: hidden, but their cursor and first-seen time are kept. */
  private readonly unlisted = new Set<string>();
  private readonly exported = new Set<string>();
  private readonly exportedPerStack = new Map<string, number>();
  private readonly inProgress = new Map<string, Map<string, InProgressRecord>>();
  private readonly counters = new Map<string, CounterRow>();
  private readonly histograms = new Map<string, MutableHistogram>();
  private readonly lastUpdates = new Map<string, LastUpdateRow>();
  private readonly lastSuccess = new Map<string, LastSuccessRow>();
  /** Bumped by every write that may change a scrape (more often than needed is still correct). */
  private stamp = 1;

  async migrate(): Promise<void> {
    this.open();
  }

  async ping(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async replaceOrgStacks(org: string, stacks: readonly StackSummary[], nowMs: number): Promise<void> {
    this.open();
    for (const s of stacks) checkOrg(org, s);
    this.stamp += 1;
    const listed = new Set<string>();
    for (const s of stacks) {
      const key = refKey(s);
      listed.add(key);
      const known = this.stacks.get(key);
      // A relisted stack is synced again: its gauge facts were dropped while it was unlisted.
      const relisted = this.unlisted.delete(key);
      const synced = relisted ? undefined : known?.syncedLastUpdate;
      this.stacks.set(key, {
        ...refOf(s),
        ...(s.lastUpdate === undefined ? {} : { lastUpdate: s.lastUpdate }),
        ...(s.resourceCount === undefined ? {} : { resourceCount: s.resourceCount }),
        ...(synced === undefined ? {} : { syncedLastUpdate: synced }),
        cursorVersion: known?.cursorVersion ?? 0,
        firstSeenMs: known?.firstSeenMs ?? nowMs,
      });
    }
    const forget = (stackId: string): boolean => {
      const [stackOrg] = JSON.parse(stackId) as [string];
      return stackOrg === org && !listed.has(stackId);
    };
    for (const key of this.stacks.keys()) if (forget(key)) this.unlisted.add(key);
    for (const key of [...this.inProgress.keys()]) if (forget(key)) this.inProgress.delete(key);
    for (const key of [...this.lastSuccess.keys()]) if (forget(key)) this.lastSuccess.delete(key);
    for (const [key, row] of [...this.lastUpdates]) if (forget(refKey(row.stack))) this.lastUpdates.delete(key);
  }

  async listStacks(): Promise<StackRecord[]> {
    this.open();
    return [...this.stacks.entries()]
      .filter(([key]) => !this.unlisted.has(key))
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([, r]) => ({ ...r }));
  }

  async getStack(ref: StackRef): Promise<StackRecord | undefined> {
    this.open();
    const r = this.listedStack(refKey(ref));
    return r === undefined ? undefined : { ...r };
  }

  async markStackSynced(ref: StackRef, lastUpdate: number | undefined): Promise<void> {
    this.open();
    const key = refKey(ref);
    const known = this.listedStack(key);
    if (known === undefined) return;
    const { syncedLastUpdate: _old, ...rest } = known;
    this.stacks.set(key, lastUpdate === undefined ? rest : { ...rest, syncedLastUpdate: lastUpdate });
  }

  async advanceCursor(ref: StackRef, version: number): Promise<void> {
    this.open();
    checkCursorVersion(ref, version);
    const key = refKey(ref);
    const known = this.listedStack(key);
    if (known !== undefined) this.stacks.set(key, { ...known, cursorVersion: Math.max(known.cursorVersion, version) });
  }

  async resetCursor(ref: StackRef): Promise<void> {
    this.open();
    const key = refKey(ref);
    const known = this.listedStack(key);
    if (known !== undefined) this.stacks.set(key, { ...known, cursorVersion: 0 });
  }

  async commitUpdate(commit: UpdateCommit): Promise<boolean> {
    this.open();
    checkCommit(commit);
    const { update: u, deltas, exportedAtMs } = commit;
    const stackId = refKey(u.stack);
    const exportedKey = ledgerKey(u.stack.org, u.updateId);
    if (this.exported.has(exportedKey)) return false;

    // Validate everything before touching any map, so a refused commit leaves no trace.
    for (const delta of deltas.counters) checkCounterDelta(delta);
    const boundsInCommit = new Map<string, readonly number[]>();
    for (const obs of deltas.histograms) {
      checkObservation(obs);
      const key = seriesKey(obs.name, obs.labels);
      const stored = this.histograms.get(key)?.buckets ?? boundsInCommit.get(key);
      if (stored !== undefined && !sameBuckets(stored, obs.buckets)) throw bucketMismatch(obs, stored);
      boundsInCommit.set(key, obs.buckets);
    }

    this.exported.add(exportedKey);
    this.exportedPerStack.set(stackId, (this.exportedPerStack.get(stackId) ?? 0) + 1);

    // A commit does not relist a stack the org list hides; it only moves its cursor.
    const known = this.stacks.get(stackId);
    this.stacks.set(
      stackId,
      known === undefined
        ? { ...refOf(u.stack), cursorVersion: u.version, firstSeenMs: exportedAtMs }
        : { ...known, cursorVersion: Math.max(known.cursorVersion, u.version) },
    );

    for (const delta of deltas.counters) {
      const key = seriesKey(delta.name, delta.labels);
      const row = this.counters.get(key);
      this.counters.set(key, {
        name: delta.name,
        labels: row?.labels ?? canonicalLabels(delta.labels),
        value: (row?.value ?? 0) + delta.value,
      });
    }

    for (const obs of deltas.histograms) {
      const key = seriesKey(obs.name, obs.labels);
      let h = this.histograms.get(key);
      if (h === undefined) {
        h = {
          name: obs.name,
          labels: canonicalLabels(obs.labels),
          buckets: [...obs.buckets],
          bucketCounts: new Array<number>(obs.buckets.length + 1).fill(0),
          sum: 0,
          count: 0,
          exemplars: new Array<Exemplar | null>(obs.buckets.length + 1).fill(null),
        };
        this.histograms.set(key, h);
      }
      const slot = bucketIndex(h.buckets, obs.value);
      h.bucketCounts[slot] = (h.bucketCounts[slot] as number) + 1;
      h.sum += obs.value;
      h.count += 1;
      if (obs.exemplar !== undefined) h.exemplars[slot] = { ...obs.exemplar, value: obs.value };
    }
    this.stamp += 1;

    // An unlisted stack has no gauges, so it gets no last-update facts either.
    const listed = !this.unlisted.has(stackId);
    const lastKey = JSON.stringify([stackId, u.kind]);
    const last = this.lastUpdates.get(lastKey);
    if (listed && (last === undefined || u.endTime >= last.endTime)) {
      this.lastUpdates.set(lastKey, {
        stack: refOf(u.stack),
        kind: u.kind,
        result: u.result,
        endTime: u.endTime,
        durationSeconds: Math.max(0, u.endTime - u.startTime),
      });
    }
    if (listed && u.result === 'succeeded') {
      const success = this.lastSuccess.get(stackId);
      if (success === undefined || u.endTime >= success.endTime) {
        this.lastSuccess.set(stackId, { stack: refOf(u.stack), endTime: u.endTime });
      }
    }

    const running = this.inProgress.get(stackId);
    running?.delete(u.updateId);
    if (running?.size === 0) this.inProgress.delete(stackId);
    return true;
  }

  async isExported(ref: StackRef, updateId: string): Promise<boolean> {
    this.open();
    return this.exported.has(ledgerKey(ref.org, updateId));
  }

  async countExported(ref?: StackRef): Promise<number> {
    this.open();
    return ref === undefined ? this.exported.size : (this.exportedPerStack.get(refKey(ref)) ?? 0);
  }

  async setInProgress(ref: StackRef, updates: readonly InProgressRecord[]): Promise<void> {
    this.open();
    for (const u of updates) checkSameStack(ref, u.stack, `in-progress update ${u.updateId}`);
    this.stamp += 1;
    const key = refKey(ref);
    if (updates.length === 0) {
      this.inProgress.delete(key);
      return;
    }
    this.inProgress.set(
      key,
      new Map(updates.map((u) => [u.updateId, { ...u, stack: refOf(ref) }])),
    );
  }

  async listInProgress(): Promise<InProgressRecord[]> {
    this.open();
    return [...this.inProgress.entries()]
      .sort(([a], [b]) => compareKeys(a, b))
      .flatMap(([, set]) =>
        [...set.values()].sort((a, b) => a.version - b.version || compareKeys(a.updateId, b.updateId)),
      )
      .map((r) => ({ ...r, stack: refOf(r.stack) }));
  }

  async readMetricsStamp(): Promise<number> {
    this.open();
    return this.stamp;
  }

  async readCounters(): Promise<CounterRow[]> {
    this.open();
    return [...this.counters.entries()]
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([, r]) => ({ name: r.name, labels: { ...r.labels }, value: r.value }));
  }

  async readHistograms(): Promise<HistogramRow[]> {
    this.open();
    return [...this.histograms.entries()]
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([, h]) => ({
        name: h.name,
        labels: { ...h.labels },
        buckets: [...h.buckets],
        bucketCounts: [...h.bucketCounts],
        sum: h.sum,
        count: h.count,
        ...(h.exemplars.some((e) => e !== null) ? { exemplars: h.exemplars.map((e) => (e === null ? null : { ...e })) } : {}),
      }));
  }

  async readLastUpdates(): Promise<LastUpdateRow[]> {
    this.open();
    return [...this.lastUpdates.entries()]
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([, r]) => ({ ...r, stack: refOf(r.stack) }));
  }

  async readLastSuccesses(): Promise<LastSuccessRow[]> {
    this.open();
    return [...this.lastSuccess.entries()]
      .sort(([a], [b]) => compareKeys(a, b))
      .map(([, r]) => ({ ...r, stack: refOf(r.stack) }));
  }

  private listedStack(key: string): StackRecord | undefined {
    return this.unlisted.has(key) ? undefined : this.stacks.get(key);
  }

  private open(): void {
    if (this.closed) throw new ExporterError('STATE_ERROR', 'state store is closed');
  }
}
