import type { BackfillPhase, BackfillSnapshot, FinishedBackfill } from '../domain/backfill-status.js';
import type { Clock } from '../domain/clock.js';
import { stackKey, type StackRef } from '../domain/stack.js';
import type { Logger } from '../logging/logger.js';

/** The gauges progress feeds (implemented by ExporterMetrics). */
export interface BackfillMetrics {
  setBacklog(updates: number): void;
  setBackfillStacksPending(stacks: number): void;
}

export interface BackfillProgressOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often a progress line is logged while a cycle has work. */
  readonly intervalMs: number;
  readonly metrics: BackfillMetrics;
}

/**
 * Progress of the poll cycles of one process, so a first run over a large organization
 * says how far it really is: stacks listed, stacks whose history has been read, updates
 * discovered and exported, and an ETA that counts the stacks still unread. The poll cycle
 * and stack sync call the hooks; the gauges follow at once, and while a cycle has work a
 * timer logs a line every intervalMs (so one huge update still shows progress). The last
 * line of a cycle that logged progress (and of the first run always) says how long it took
 * and what it exported.
 */
export class BackfillProgress {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly metrics: BackfillMetrics;
  private timer: ReturnType<typeof setInterval> | undefined;

  private phase: BackfillPhase = 'idle';
  private cycles = 0;
  private startedMs = 0;
  private readingStartedMs = 0;
  private listedAllOrgs = false;
  private listed = 0;
  private toRead: number | undefined;
  /** Stacks whose history read happened or failed; a set, so a hook called twice counts once. */
  private readonly read = new Set<string>();
  private readonly done = new Set<string>();
  private discovered = 0;
  private exportedCount = 0;
  private events = 0;
  private linesLogged = 0;
  private last: FinishedBackfill | undefined;

  constructor(options: BackfillProgressOptions) {
    this.clock = options.clock;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs;
    this.metrics = options.metrics;
  }

  /** A cycle starts listing; counters restart, the timer runs until finishCycle. */
  beginCycle(): void {
    this.phase = 'listing';
    this.startedMs = this.clock.now();
    this.readingStartedMs = this.startedMs;
    this.listedAllOrgs = false;
    this.listed = 0;
    this.toRead = undefined;
    this.read.clear();
    this.done.clear();
    this.discovered = 0;
    this.exportedCount = 0;
    this.events = 0;
    this.linesLogged = 0;
    this.stopTimer();
    this.timer = setInterval(() => this.log(), this.intervalMs);
    this.timer.unref();
  }

  /** One org's stack list was read (count after the filters). */
  orgListed(stacks: number): void {
    this.listed += stacks;
  }

  /** Listing is over; `stacksToRead` is how many stacks this cycle reads the history of. */
  listingFinished(allOrgsListed: boolean, stacksToRead: number): void {
    this.listedAllOrgs = allOrgsListed;
    this.toRead = stacksToRead;
    this.phase = 'reading';
    this.readingStartedMs = this.clock.now();
    this.metrics.setBackfillStacksPending(this.pending());
  }

  /** A stack's new history was read: `updates` new completed updates to export. */
  historyRead(stack: StackRef, updates: number): void {
    this.read.add(stackKey(stack));
    this.discovered += updates;
    this.metrics.setBackfillStacksPending(this.pending());
    this.metrics.setBacklog(this.remaining());
  }

  /** A stack's sync ended, successfully or not (a failed history read stops being pending). */
  stackDone(stack: StackRef): void {
    const key = stackKey(stack);
    this.done.add(key);
    this.read.add(key);
    this.metrics.setBackfillStacksPending(this.pending());
  }

  eventsRead(count: number): void {
    this.events += count;
  }

  /** One discovered update is dealt with (exported, or found already exported). */
  exported(): void {
    this.exportedCount += 1;
    this.metrics.setBacklog(this.remaining());
  }

  /** Updates discovered but not exported yet. */
  remaining(): number {
    return Math.max(0, this.discovered - this.exportedCount);
  }

  /** Ends the cycle: stops the timer, zeroes the pending gauge, logs the closing line. */
  finishCycle(result: 'success' | 'failure'): FinishedBackfill {
    this.stopTimer();
    const snap = this.snapshot();
    const finished: FinishedBackfill = {
      result,
      firstRun: snap.firstRun,
      finishedAt: new Date(this.clock.now()).toISOString(),
      durationSeconds: snap.elapsedSeconds,
      stacksRead: snap.stacksRead,
      updatesExported: snap.updatesExported,
      events: snap.events,
    };
    if (snap.firstRun || this.linesLogged > 0) {
      const what = snap.firstRun ? 'first run' : 'backfill';
      const how = result === 'success' ? 'finished' : 'ended with failures (the rest is retried next cycle)';
      this.logger.info(
        { ...finished, backlog: this.remaining() },
        `${what} ${how} in ${Math.round(snap.elapsedSeconds)} s: ${snap.updatesExported} updates and ${snap.events} events exported from ${snap.stacksRead} stacks`,
      );
      this.last = finished;
    }
    this.cycles += 1;
    this.phase = 'idle';
    this.metrics.setBackfillStacksPending(0);
    return finished;
  }

  /** The last cycle that logged progress (the first run included), for the status page. */
  lastFinished(): FinishedBackfill | undefined {
    return this.last;
  }

  snapshot(): BackfillSnapshot {
    const now = this.clock.now();
    const elapsedSeconds = this.phase === 'idle' && this.cycles === 0 ? 0 : Math.max(0, (now - this.startedMs) / 1000);
    const { etaSeconds, updatesEstimated } = this.estimate(now);
    return {
      phase: this.phase,
      firstRun: this.cycles === 0,
      listedAllOrgs: this.listedAllOrgs,
      stacksListed: this.listed,
      stacksToRead: this.toRead,
      stacksRead: this.read.size,
      stacksPending: this.pending(),
      updatesDiscovered: this.discovered,
      updatesExported: this.exportedCount,
      events: this.events,
      elapsedSeconds,
      etaSeconds,
      updatesEstimated,
    };
  }

  /**
   * Logs one progress line; called by the timer. Lines appear while stacks or updates are
   * pending, and while the first run lists stacks (later cycles list quietly).
   */
  log(): void {
    const s = this.snapshot();
    if (s.phase === 'idle') return;
    if (s.phase === 'listing') {
      if (!s.firstRun) return;
      this.linesLogged += 1;
      this.logger.info(
        { phase: s.phase, stacksListed: s.stacksListed, elapsedSeconds: Math.round(s.elapsedSeconds) },
        `backfill progress: listing stacks, ${s.stacksListed} listed so far; ETA unknown until every org is listed`,
      );
      return;
    }
    if (s.stacksPending === 0 && this.remaining() === 0) return;
    this.linesLogged += 1;
    const readingSeconds = Math.max(0.001, (this.clock.now() - this.readingStartedMs) / 1000);
    const eta = s.etaSeconds === undefined ? 'ETA unknown yet' : `ETA ~${s.etaSeconds} s (estimate)`;
    this.logger.info(
      {
        phase: s.phase,
        stacksListed: s.stacksListed,
        stacksToRead: s.stacksToRead,
        stacksRead: s.stacksRead,
        stacksPending: s.stacksPending,
        updatesDiscovered: s.updatesDiscovered,
        updatesExported: s.updatesExported,
        updatesEstimated: s.updatesEstimated,
        eventsPerSecond: Math.round(s.events / readingSeconds),
        etaSeconds: s.etaSeconds,
        etaIsEstimate: true,
      },
      `backfill progress: ${s.stacksRead}/${s.stacksToRead ?? 0} stacks read, ` +
        `${s.updatesExported}/${s.updatesDiscovered} discovered updates exported, ${eta}`,
    );
  }

  private pending(): number {
    return this.toRead === undefined ? 0 : Math.max(0, this.toRead - this.read.size);
  }

  private estimate(now: number): { etaSeconds: number | undefined; updatesEstimated: number | undefined } {
    if (this.phase !== 'reading' || this.toRead === undefined) return { etaSeconds: undefined, updatesEstimated: undefined };
    const pending = this.pending();
    const readSeconds = (now - this.readingStartedMs) / 1000;
    // Stacks read so far tell how many updates an unread stack brings, on average.
    const stacksRead = this.read.size;
    const updatesEstimated =
      pending === 0 ? this.discovered : stacksRead > 0 ? Math.round(this.discovered + (pending * this.discovered) / stacksRead) : undefined;
    const unfinishedStacks = Math.max(0, this.toRead - this.done.size);
    if (unfinishedStacks === 0 && this.remaining() === 0) return { etaSeconds: 0, updatesEstimated };
    if (readSeconds <= 0) return { etaSeconds: undefined, updatesEstimated };
    const candidates: number[] = [];
    if (updatesEstimated !== undefined && this.exportedCount > 0) {
      candidates.push(Math.max(0, updatesEstimated - this.exportedCount) / (this.exportedCount / readSeconds));
    }
    if (this.done.size > 0) candidates.push(unfinishedStacks / (this.done.size / readSeconds));
    const etaSeconds = candidates.length === 0 ? undefined : Math.ceil(Math.max(...candidates));
    return { etaSeconds, updatesEstimated };
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
