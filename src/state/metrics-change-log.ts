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
  /** `name\nlabelsKey` to the stamp of its latest write: only strings, no caller objects kept. */
  private readonly series = new Map<string, number>();
  private readonly stacks = new Map<string, { ref: StackRef; stamp: number }>();
  /** The answer covers stamps above `base`, through `last`; undefined before the first record. */
  private base: number | undefined;
  private last: number | undefined;

  /** After the transaction that moved the stamp to `stamp` committed. */
  record(stamp: number, changes: MetricsChanges): void {
    if (this.last === undefined || stamp !== this.last + 1 || this.series.size + this.stacks.size > MAX_KEYS) {
      // A gap (or too much to remember): nothing before this write can be answered.
      this.series.clear();
      this.stacks.clear();
      this.base = stamp - 1;
    }
    this.last = stamp;
    for (const ref of changes.series) this.series.set(`${ref.name}\n${labelsKey(ref.labels)}`, stamp);
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
    for (const [key, stamp] of this.series) {
      if (stamp > since) series.push(seriesRef(key));
      else this.series.delete(key);
    }
    for (const [key, entry] of this.stacks) {
      if (entry.stamp > since) stacks.push(entry.ref);
      else this.stacks.delete(key);
    }
    this.base = since;
    return { series, stacks };
  }
}

/** The series a `name\nlabelsKey` key names (labelsKey: JSON of the sorted [name, value] pairs). */
function seriesRef(key: string): SeriesRef {
  const cut = key.indexOf('\n');
  return { name: key.slice(0, cut), labels: Object.fromEntries(JSON.parse(key.slice(cut + 1)) as [string, string][]) };
}
