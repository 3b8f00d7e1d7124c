/** What commitUpdate reads of a stored histogram row before folding observations into it. */
export interface HistogramTotals {
  readonly buckets: readonly number[];
  /** One per finite bucket, then +Inf (non-cumulative). */
  readonly counts: readonly number[];
  readonly exemplarsJson: string | null;
}

/**
 * The histogram rows this process has written, as committed, by name and labels key. Only
 * for a store that is the sole writer of its rows (the SQLite store holds its file with
 * EXCLUSIVE locking): a commit then folds its observations without reading the row back.
 * Callers set entries only after their transaction committed, so a rolled-back commit
 * leaves nothing behind. Holds one entry per stored series, like a full scrape does.
 */
export class HistogramRowCache {
  private readonly byName = new Map<string, Map<string, HistogramTotals>>();

  get(name: string, labelsKey: string): HistogramTotals | undefined {
    return this.byName.get(name)?.get(labelsKey);
  }

  set(name: string, labelsKey: string, totals: HistogramTotals): void {
    let byKey = this.byName.get(name);
    if (byKey === undefined) this.byName.set(name, (byKey = new Map()));
    byKey.set(labelsKey, totals);
  }

  clear(): void {
    this.byName.clear();
  }
}
