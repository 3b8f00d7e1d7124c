import type { Labels } from '../domain/metric-delta.js';
import { labelsKey } from '../domain/metric-delta.js';
import type { StackRef } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';

/** One stored counter or histogram series, by name and labels. */
export interface SeriesRef {
  readonly name: string;
  readonly labels: Labels;
}

/** What the writes after a metrics stamp touched. */
export interface MetricsChanges {
  readonly series: readonly SeriesRef[];
  readonly stacks: readonly StackRef[];
}

/**
 * Above this many remembered keys the log forgets them all (readers then read everything
 * once). Bounds its memory (about 150 bytes a key) when nobody scrapes for a long time.
 */
const MAX_KEYS = 100_000;

/**
 * Remembers, in memory, which series and stacks the writes of this process touched, against
 * the metrics stamp each write moved to (StateStore.readMetricsStamp). It can answer "what
 * changed after stamp S, up to stamp C" only when every stamp in (S, C] was recorded here:
 * a stamp moved by another writer (another replica, a migration, a write path that does not
 * record) leaves a gap, and the answer is then undefined, so the reader reads everything.
 * Recording a key that did not really change is harmless (its rows are read again).
 */
export class MetricsChangeLog {
  /** Name, then labelsKey, to the stamp of its latest write: only strings, no caller objects kept. */
  private readonly series = new Map<string, Map<string, number>>();
  private seriesCount = 0;
  private readonly stacks = new Map<string, { ref: StackRef; stamp: number }>();
  /** The answer covers stamps above `base`, through `last`; undefined before the first record. */
  private base: number | undefined;
  private last: number | undefined;

  /** After the transaction that moved the stamp to `stamp` committed. */
  record(stamp: number, changes: MetricsChanges): void {
    if (this.last === undefined || stamp !== this.last + 1 || this.seriesCount + this.stacks.size > MAX_KEYS) {
      // A gap (or too much to remember): nothing before this write can be answered.
      this.series.clear();
      this.seriesCount = 0;
      this.stacks.clear();
      this.base = stamp - 1;
    }
    this.last = stamp;
    for (const ref of changes.series) {
      let byKey = this.series.get(ref.name);
      if (byKey === undefined) this.series.set(ref.name, (byKey = new Map()));
      const key = labelsKey(ref.labels);
      if (!byKey.has(key)) this.seriesCount += 1;
      byKey.set(key, stamp);
    }
    for (const ref of changes.stacks) this.stacks.set(stackKey(ref), { ref, stamp });
  }

  /**
   * The series and stacks written after `since` when the store's stamp is now `current`, or
   * undefined when a stamp in between was moved by a write not recorded here. Forgets what
   * it answered for stamps up to `since`: a later question about those is answered undefined.
   */
  since(since: number, current: number): MetricsChanges | undefined {
    if (since === current) return { series: [], stacks: [] };
    if (this.base === undefined || this.last !== current || since < this.base || since > current) return undefined;
    const series: SeriesRef[] = [];
    const stacks: StackRef[] = [];
    for (const [name, byKey] of this.series) {
      for (const [key, stamp] of byKey) {
        if (stamp > since) series.push(seriesRef(name, key));
        else {
          byKey.delete(key);
          this.seriesCount -= 1;
        }
      }
      if (byKey.size === 0) this.series.delete(name);
    }
    for (const [key, entry] of this.stacks) {
      if (entry.stamp > since) stacks.push(entry.ref);
      else this.stacks.delete(key);
    }
    this.base = since;
    return { series, stacks };
  }
}

/** The series a name and labelsKey name (labelsKey: JSON of the sorted [name, value] pairs). */
export function seriesRef(name: string, key: string): SeriesRef {
  return { name, labels: Object.fromEntries(JSON.parse(key) as [string, string][]) };
}
