import type { Clock } from '../domain/clock.js';
import type { Logger } from '../logging/logger.js';

/**
 * Counts updates known vs exported within one poll cycle, feeds the backlog gauge and,
 * while work is pending, logs a progress line (done/known, events per second, ETA) every
 * intervalMs — from a timer, so a single huge update still shows progress.
 */
export class BackfillProgress {
  private known = 0;
  private done = 0;
  private events = 0;
  private readonly startedMs: number;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly onBacklog: (remaining: number) => void,
  ) {
    this.startedMs = clock.now();
  }

  start(): void {
    this.timer ??= setInterval(() => this.log(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  discovered(updates: number): void {
    this.known += updates;
    this.onBacklog(this.remaining());
  }

  eventsRead(count: number): void {
    this.events += count;
  }

  exported(): void {
    this.done += 1;
    this.onBacklog(this.remaining());
  }

  /** Updates found but not exported yet. */
  remaining(): number {
    return Math.max(0, this.known - this.done);
  }

  snapshot(): { known: number; done: number; events: number; elapsedMs: number } {
    return { known: this.known, done: this.done, events: this.events, elapsedMs: this.clock.now() - this.startedMs };
  }

  /** Logs one progress line when anything is pending; called by the timer. */
  log(): void {
    if (this.remaining() === 0) return;
    const elapsedSeconds = Math.max(0.001, (this.clock.now() - this.startedMs) / 1000);
    const updatesPerSecond = this.done / elapsedSeconds;
    const etaSeconds = updatesPerSecond > 0 ? Math.round(this.remaining() / updatesPerSecond) : undefined;
    this.logger.info(
      { done: this.done, known: this.known, eventsPerSecond: Math.round(this.events / elapsedSeconds), etaSeconds },
      `backfill progress: ${this.done}/${this.known} updates exported`,
    );
  }
}
