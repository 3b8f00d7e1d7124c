import type { Clock } from '../domain/clock.js';
import type { Logger } from '../logging/logger.js';

/**
 * Counts updates known vs exported within one poll cycle, feeds the backlog gauge and
 * logs a progress line (done/known, events per second, ETA) at most every intervalMs.
 */
export class BackfillProgress {
  private known = 0;
  private done = 0;
  private events = 0;
  private readonly startedMs: number;
  private lastLogMs: number;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly onBacklog: (remaining: number) => void,
  ) {
    this.startedMs = clock.now();
    this.lastLogMs = this.startedMs;
  }

  discovered(updates: number): void {
    this.known += updates;
    this.onBacklog(this.remaining());
  }

  exported(events: number): void {
    this.done += 1;
    this.events += events;
    this.onBacklog(this.remaining());
    this.maybeLog();
  }

  /** Updates found but not exported (skipped ones are not counted as known). */
  remaining(): number {
    return Math.max(0, this.known - this.done);
  }

  snapshot(): { known: number; done: number; events: number; elapsedMs: number } {
    return { known: this.known, done: this.done, events: this.events, elapsedMs: this.clock.now() - this.startedMs };
  }

  private maybeLog(): void {
    const now = this.clock.now();
    if (now - this.lastLogMs < this.intervalMs) return;
    this.lastLogMs = now;
    const elapsedSeconds = Math.max(0.001, (now - this.startedMs) / 1000);
    const updatesPerSecond = this.done / elapsedSeconds;
    const etaSeconds = updatesPerSecond > 0 ? Math.round(this.remaining() / updatesPerSecond) : undefined;
    this.logger.info(
      {
        done: this.done,
        known: this.known,
        eventsPerSecond: Math.round(this.events / elapsedSeconds),
        etaSeconds,
      },
      `backfill progress: ${this.done}/${this.known} updates exported`,
    );
  }
}
