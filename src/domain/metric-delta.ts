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

/** The trace of an update that fell in a bucket; the store keeps the latest per bucket. */
export interface Exemplar {
  /** 32 hex characters. */
  readonly traceId: string;
  /** The observed value. */
  readonly value: number;
  /** Unix seconds. */
  readonly timestamp: number;
}

export interface HistogramObservation {
  readonly name: string;
  readonly labels: Labels;
  /**
   * Upper bounds of the finite buckets, ascending (+Inf is implied). Empty for a summary
   * (sum and count only).
   */
  readonly buckets: readonly number[];
  readonly value: number;
  /** Stored as the exemplar of the bucket the value falls in. */
  readonly exemplar?: Omit<Exemplar, 'value'>;
}

export interface MetricDeltas {
  readonly counters: readonly CounterDelta[];
  readonly histograms: readonly HistogramObservation[];
}

/** Canonical key of a label set: sorted `k=v` pairs, so the same labels always match. */
export function labelsKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}
