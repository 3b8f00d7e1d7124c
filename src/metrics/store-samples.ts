import type { Exemplar, Labels } from '../domain/metric-delta.js';
import type { StackRef } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';
import type {
  CounterRow,
  HistogramRow,
  InProgressRecord,
  LastSuccessRow,
  LastUpdateRow,
  StackRecord,
  StateStore,
} from '../state/state-store.js';
import type { MetricDefinition } from './definitions.js';
import { METRIC_DEFINITIONS, METRICS } from './definitions.js';

/**
 * What one scrape read from the store (readStoreSnapshot fills every field; a field left
 * out counts as no rows, so the metrics built from it have no samples).
 */
export interface StoreSnapshot {
  readonly counters?: readonly CounterRow[];
  readonly histograms?: readonly HistogramRow[];
  readonly stacks?: readonly StackRecord[];
  readonly lastUpdates?: readonly LastUpdateRow[];
  readonly lastSuccesses?: readonly LastSuccessRow[];
  readonly inProgress?: readonly InProgressRecord[];
}

/** Every read that feeds the pulumi_* families (a scrape after a restart, each OTLP push); rejects when one fails. */
export async function readStoreSnapshot(store: StateStore): Promise<StoreSnapshot> {
  const [counters, histograms, stacks, lastUpdates, lastSuccesses, inProgress] = await Promise.all([
    store.readCounters(),
    store.readHistograms(),
    store.listStacks(),
    store.readLastUpdates(),
    store.readLastSuccesses(),
    store.listInProgress(),
  ]);
  return { counters, histograms, stacks, lastUpdates, lastSuccesses, inProgress };
}

/** One exposition line's worth of data, in prom-client's MetricValue shape. */
export interface Sample {
  /** Set for histogram lines (`_bucket`, `_sum`, `_count`); the family name otherwise. */
  readonly metricName?: string;
  /** Shared by every line of one series, so renderers can format it once. */
  readonly labels: Readonly<Record<string, string>>;
  /** The `le` label of a `_bucket` line, written after the others. */
  readonly le?: string;
  readonly value: number;
  /** OpenMetrics only: the latest update that fell in this bucket. */
  readonly exemplar?: Exemplar;
}

/**
 * The samples of one stored series, or of one stack in a stack-state family, under the key
 * the exposition orders them by: a series' labels in convention order, or the stack.
 */
export interface SeriesGroup {
  readonly key: string;
  readonly samples: Sample[];
}

/** Called with a family's samples in exposition order, each under its group's key. */
type Push = (name: string, key: string, samples: readonly Sample[]) => void;

const STORE_DEFS = new Map<string, MetricDefinition>(
  METRIC_DEFINITIONS.filter((d) => d.source !== 'process').map((d) => [d.name, d]),
);

/**
 * Turns a store snapshot into the samples of every store-backed and stack-state metric,
 * keyed by metric name. Pure, so the exposition can be tested without a store.
 */
export function storeSamples(snapshot: StoreSnapshot): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const [name, groups] of storeSeries(snapshot)) out.set(name, groups.flatMap((g) => g.samples));
  return out;
}

/**
 * The same samples grouped per series (per stack for the stack-state families), each family's
 * groups in exposition order. A snapshot of a few series and stacks gives just their groups.
 */
export function storeSeries(snapshot: StoreSnapshot): Map<string, SeriesGroup[]> {
  const out = new Map<string, SeriesGroup[]>();
  for (const name of STORE_DEFS.keys()) out.set(name, []);
  const push: Push = (name, key, samples) => {
    const groups = out.get(name);
    if (groups === undefined) return;
    const last = groups[groups.length - 1];
    if (last?.key === key) last.samples.push(...samples);
    else groups.push({ key, samples: [...samples] });
  };
  const defs = STORE_DEFS;

  // Rows of metrics that are no longer defined (or of another type) have no HELP/TYPE to
  // live under, so they are not exposed.
  const series = <R extends { readonly name: string; readonly labels: Labels }>(
    rows: readonly R[],
    type: MetricDefinition['type'],
  ): { row: R; labels: Record<string, string>; key: string }[] =>
    sortBy(
      rows.flatMap((row) => {
        const def = defs.get(row.name);
        if (def?.source !== 'store' || def.type !== type) return [];
        const labels = ordered(def, row.labels);
        return [{ row, labels, key: labelsSortKey(labels) }];
      }),
      ({ key }) => key,
    );
  for (const { row, labels, key } of series(snapshot.counters ?? [], 'counter')) {
    push(row.name, key, [{ labels, value: row.value }]);
  }
  for (const { row, labels, key } of series(snapshot.histograms ?? [], 'histogram')) {
    push(row.name, key, histogramSamples(row, labels));
  }
  // Summaries are stored as histograms without finite buckets: only sum and count.
  for (const { row, labels, key } of series(snapshot.histograms ?? [], 'summary')) {
    push(row.name, key, [
      { metricName: `${row.name}_sum`, labels, value: row.sum },
      { metricName: `${row.name}_count`, labels, value: row.count },
    ]);
  }
  if (snapshot.stacks !== undefined) addStackState(snapshot, snapshot.stacks, push);
  return out;
}

/**
 * The group key storeSeries gives the stored series `name{labels}` (which may no longer
 * exist); undefined when no store-backed family of that name is exposed.
 */
export function storedSeriesKey(name: string, labels: Labels): string | undefined {
  const def = STORE_DEFS.get(name);
  return def?.source === 'store' ? labelsSortKey(ordered(def, labels)) : undefined;
}

/** Series sort by their labels in convention order: org, project, stack, kind, ... */
function labelsSortKey(labels: Readonly<Record<string, string>>): string {
  let key = '';
  for (const name in labels) key += `${name}\u0001${labels[name] as string}\u0000`;
  return key;
}

function histogramSamples(row: HistogramRow, labels: Record<string, string>): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  const bucket = (i: number, le: string): void => {
    cumulative += row.bucketCounts[i] ?? 0;
    const exemplar = row.exemplars?.[i] ?? undefined;
    samples.push({ metricName: `${row.name}_bucket`, labels, le, value: cumulative, ...(exemplar === undefined ? {} : { exemplar }) });
  };
  row.buckets.forEach((bound, i) => bucket(i, String(bound)));
  bucket(row.buckets.length, '+Inf');
  samples.push({ metricName: `${row.name}_sum`, labels, value: row.sum });
  samples.push({ metricName: `${row.name}_count`, labels, value: row.count });
  return samples;
}

function addStackState(
  snapshot: StoreSnapshot,
  stacks: readonly StackRecord[],
  push: Push,
): void {
  // Facts about stacks that are no longer listed are dropped even if the store kept them:
  // a forgotten stack's gauges must disappear.
  const listed = new Set(stacks.map(stackKey));
  const isListed = (row: { readonly stack: StackRef }): boolean => listed.has(stackKey(row.stack));
  const stackLabels = (s: StackRef): Record<string, string> => ({
    org: s.org,
    project: s.project,
    stack: s.stack,
  });

  for (const s of sortStacks(stacks)) {
    if (s.resourceCount !== undefined) {
      push(METRICS.stackResources.name, stackKey(s), [{ labels: stackLabels(s), value: s.resourceCount }]);
    }
  }

  // Kinds each stack has run, so in_progress can say 0 for them rather than being absent;
  // keyed by stack then kind, which is also the exposition order.
  const kinds = new Map<string, { stack: string; labels: Record<string, string>; running?: number }>();
  if (snapshot.lastUpdates !== undefined) {
    for (const row of sortBy(snapshot.lastUpdates.filter(isListed), (r) => `${stackKey(r.stack)}\0${r.kind}`)) {
      const labels = { ...stackLabels(row.stack), kind: row.kind };
      const stack = stackKey(row.stack);
      push(METRICS.stackLastUpdateTimestampSeconds.name, stack, [{ labels, value: row.endTime }]);
      push(METRICS.stackLastUpdateSuccess.name, stack, [{ labels, value: row.result === 'succeeded' ? 1 : 0 }]);
      if (row.durationSeconds !== undefined) {
        push(METRICS.stackLastUpdateDurationSeconds.name, stack, [{ labels, value: row.durationSeconds }]);
      }
      kinds.set(`${stack}\0${row.kind}`, { stack, labels });
    }
  }
  if (snapshot.lastSuccesses !== undefined) {
    for (const row of sortBy(snapshot.lastSuccesses.filter(isListed), (r) => stackKey(r.stack))) {
      push(METRICS.stackLastSuccessfulUpdateTimestampSeconds.name, stackKey(row.stack), [{ labels: stackLabels(row.stack), value: row.endTime }]);
    }
  }
  if (snapshot.inProgress !== undefined) {
    for (const row of snapshot.inProgress.filter(isListed)) {
      const labels = { ...stackLabels(row.stack), kind: row.kind };
      const stack = stackKey(row.stack);
      const key = `${stack}\0${row.kind}`;
      const known = kinds.get(key);
      // Several updates of one kind can run at once (previews do): the oldest start is the
      // one a "stuck update" alert cares about.
      const running = Math.min(known?.running ?? Infinity, row.startTime);
      kinds.set(key, { stack, labels, running });
    }
  }
  // Without the in-progress read we cannot say 0, so the gauges are left out entirely.
  if (snapshot.inProgress === undefined) return;
  // Sorted by stack then kind, so each stack's samples are adjacent (stack keys hold no NUL).
  for (const [, entry] of sortBy([...kinds], ([key]) => key)) {
    push(METRICS.stackUpdateInProgress.name, entry.stack, [{ labels: entry.labels, value: entry.running === undefined ? 0 : 1 }]);
    if (entry.running !== undefined) {
      push(METRICS.stackUpdateStartedTimestampSeconds.name, entry.stack, [{ labels: entry.labels, value: entry.running }]);
    }
  }
}

/** Stack identity first, as the conventions list labels; an opt-in `stack` joins it there. */
const IDENTITY = ['org', 'project', 'stack'] as const;

const labelOrders = new WeakMap<MetricDefinition, readonly string[]>();

/** Labels in convention order (org, project, stack, then the definition's), then any others sorted. */
function ordered(def: MetricDefinition, labels: Labels): Record<string, string> {
  let order = labelOrders.get(def);
  if (order === undefined) {
    order = [...new Set([...IDENTITY, ...def.labelNames, ...(def.optionalLabelNames ?? [])])];
    labelOrders.set(def, order);
  }
  const out: Record<string, string> = {};
  let n = 0;
  for (const name of order) {
    const v = labels[name];
    if (v !== undefined) {
      out[name] = v;
      n += 1;
    }
  }
  // Labels the definition does not name (rows written under another shape) follow, sorted.
  if (n < Object.keys(labels).length) {
    for (const name of Object.keys(labels).sort()) {
      const v = labels[name];
      if (v !== undefined && !(name in out)) out[name] = v;
    }
  }
  return out;
}

function sortStacks(stacks: readonly StackRecord[]): StackRecord[] {
  return sortBy(stacks, stackKey);
}

function sortBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, k: key(item) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((e) => e.item);
}
