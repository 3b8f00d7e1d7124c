/**
 * Progress of the poll cycles as plain data: BackfillProgress (src/sync) produces it, the
 * status page (src/http) shows it.
 */

/** idle: between cycles; listing: reading the stack lists; reading: histories and exports. */
export type BackfillPhase = 'idle' | 'listing' | 'reading';

export interface BackfillSnapshot {
  readonly phase: BackfillPhase;
  /** True until the first cycle of this process has finished. */
  readonly firstRun: boolean;
  /** Every configured org's stack list was read in this cycle. */
  readonly listedAllOrgs: boolean;
  /** Stacks listed so far in this cycle, after the include/exclude filters. */
  readonly stacksListed: number;
  /** Stacks whose history this cycle reads (listed and changed); undefined while listing. */
  readonly stacksToRead: number | undefined;
  /** Stacks whose history has been read (or whose read failed) in this cycle. */
  readonly stacksRead: number;
  /** stacksToRead - stacksRead: the stacks whose new updates are not known yet. */
  readonly stacksPending: number;
  readonly updatesDiscovered: number;
  readonly updatesExported: number;
  readonly events: number;
  /** Since the cycle began. */
  readonly elapsedSeconds: number;
  /**
   * An estimate, not a promise: updates still to export (those discovered plus, for each
   * unread stack, the mean per stack read so far) at the export rate so far, or the unread
   * and unfinished stacks at the stack rate so far, whichever is longer. Undefined while
   * there is no rate to go by (listing, or nothing finished yet); 0 when nothing is left.
   */
  readonly etaSeconds: number | undefined;
  /** The total updates the ETA assumes; undefined like etaSeconds. */
  readonly updatesEstimated: number | undefined;
}

export interface FinishedBackfill {
  readonly result: 'success' | 'failure';
  readonly firstRun: boolean;
  /** ISO 8601. */
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly stacksRead: number;
  readonly updatesExported: number;
  readonly events: number;
}

/** What the status page shows: the cycle running now and the last finished backfill. */
export interface BackfillStatus {
  /** Absent between cycles. */
  readonly running?: BackfillSnapshot;
  /** The last cycle long enough to log progress, or the first run. */
  readonly lastFinished?: FinishedBackfill;
}
