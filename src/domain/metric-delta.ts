/**
 * Increments that one exported update makes to the persisted pulumi_* counters and
 * histograms. Built by src/metrics/ (update-deltas), applied by the StateStore in the
 * same transaction that advances the stack's cursor.
 */
export type Labels = Readonly<Record<string, string>>;

export interface CounterDelta {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramObservation {
  readonly name: string;
  readonly labels: Labels;
  /** Upper bounds of the finite buckets, ascending (+Inf is implied). */
  readonly buckets: readonly number[];
  readonly value: number;
}

export interface MetricDeltas {
  readonly counters: readonly CounterDelta[];
  readonly histograms: readonly HistogramObservation[];
}

/** Canonical key of a label set: sorted `k=v` pairs, so the same labels always match. */
export function labelsKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}
