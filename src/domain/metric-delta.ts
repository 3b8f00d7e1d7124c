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

/** The key of each label set already asked for: label sets are read-only, so it cannot go stale. */
const keys = new WeakMap<Labels, string>();

/**
 * Canonical key of a label set: JSON of its sorted [name, value] pairs, so the same labels
 * always match. Remembered per label set, since one set is keyed by the deltas, the store
 * and the change log in turn (a backfill keys about 150,000).
 */
export function labelsKey(labels: Labels): string {
  let key = keys.get(labels);
  if (key === undefined) {
    const names = Object.keys(labels).sort();
    key = '[';
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      // The same text as JSON.stringify of the pairs (a missing value becomes null there too).
      key += `${i === 0 ? '' : ','}[${JSON.stringify(name)},${JSON.stringify(labels[name] ?? null)}]`;
    }
    key += ']';
    keys.set(labels, key);
  }
  return key;
}
