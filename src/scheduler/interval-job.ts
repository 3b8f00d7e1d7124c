import type { Logger } from '../logging/logger.js';

/** The timer functions a job uses; injectable so tests can drive time. */
export interface TimerFunctions {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface IntervalJobOptions {
  readonly name: string;
  /** Cadence: the time between the starts of two runs. */
  readonly intervalMs: number;
  /** The first run starts after a random delay in [0, initialJitterMs]; 0 by default. */
  readonly initialJitterMs?: number;
  /** A uniform random number in [0, 1); Math.random by default. */
  readonly random?: () => number;
  /** The work. The signal aborts when the job is stopped. */
  readonly run: (signal: AbortSignal) => Promise<void>;
  readonly logger: Logger;
  /** Called with any error a run throws (not with aborts caused by stop()). */
  readonly onError?: (err: unknown) => void;
  /** Called after every run, for the job-duration metric. */
  readonly onRunFinished?: (durationMs: number, ok: boolean) => void;
  readonly timers?: TimerFunctions;
  readonly now?: () => number;
}

const defaultTimers: TimerFunctions = {
  // Resolved at call time so that fake timers installed after construction still apply.
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function unref(handle: unknown): void {
  if (typeof handle === 'object' && handle !== null && 'unref' in handle && typeof handle.unref === 'function') {
    handle.unref();
  }
}

/**
 * A periodic job that never overlaps itself.
 *
 * Cadence: the next run is scheduled when the current one finishes, to start at
 * `previous start + intervalMs`; a run that took longer than the interval is followed by
 * the next one at the next timer tick (a 0 ms timeout, so the event loop still turns):
 * missed starts are neither stacked up nor replayed. Timers are
 * unref'd, so a job never keeps the process alive. Nothing a run throws escapes a timer:
 * it is logged (WARN: the next run retries) and passed to `onError`.
 */
export class IntervalJob {
  readonly name: string;
  readonly #options: IntervalJobOptions;
  readonly #timers: TimerFunctions;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #controller = new AbortController();
  #state: 'idle' | 'started' | 'stopped' = 'idle';
  #timer: unknown = undefined;
  #inFlight: Promise<void> | undefined;
  #stopping: Promise<boolean> | undefined;

  constructor(options: IntervalJobOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) {
      throw new RangeError(`IntervalJob ${options.name}: intervalMs must be a positive number, got ${options.intervalMs}`);
    }
    const jitter = options.initialJitterMs ?? 0;
    if (!Number.isFinite(jitter) || jitter < 0) {
      throw new RangeError(`IntervalJob ${options.name}: initialJitterMs must be >= 0, got ${jitter}`);
    }
    this.name = options.name;
    this.#options = options;
    this.#timers = options.timers ?? defaultTimers;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger.child({ module: 'scheduler', job: options.name });
  }

  /** True while a run is in flight. */
  get running(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Schedules the first run after the initial jitter. Calling it again, or after stop(), does nothing. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'started';
    // A runNow() before start() schedules the next run itself when it finishes.
    if (this.#inFlight !== undefined) return;
    const jitter = this.#options.initialJitterMs ?? 0;
    const random = this.#options.random ?? Math.random;
    const delay = Math.min(jitter, Math.max(0, Math.floor(random() * (jitter + 1))));
    this.#schedule(delay);
  }

  /**
   * Starts a run now unless one is in flight, in which case that run's promise is returned.
   * The promise never rejects. After stop() it resolves without running.
   */
  runNow(): Promise<void> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    if (this.#state === 'stopped') return Promise.resolve();
    this.#clearTimer();
    // In flight before the run starts: a run that fails synchronously must still see itself
    // as the in-flight run when it clears that state.
    let finished!: () => void;
    const run = new Promise<void>((resolve) => {
      finished = resolve;
    });
    this.#inFlight = run;
    void this.#runOnce().then(finished, (err: unknown) => {
      // Only a throwing logger or clock gets here; the job must still not wedge.
      this.#inFlight = undefined;
      try {
        this.#options.onError?.(err);
      } catch {
        // Nothing is left to report to; the job carries on.
      }
      finished();
    });
    return run;
  }

  /**
   * Clears the timer, aborts the signal given to the run and waits for the in-flight run
   * for at most `timeoutMs`. Resolves true when no run is left in flight. Idempotent: later
   * calls return the first call's promise.
   */
  stop(timeoutMs: number): Promise<boolean> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#state = 'stopped';
    this.#clearTimer();
    this.#controller.abort(new Error(`job ${this.name} stopped`));
    const inFlight = this.#inFlight;
    if (inFlight === undefined) {
      this.#stopping = Promise.resolve(true);
      return this.#stopping;
    }
    this.#stopping = new Promise<boolean>((resolve) => {
      const timeout = this.#timers.setTimeout(() => {
        this.#logger.warn({ timeoutMs }, 'job run still in flight after the stop timeout; giving up waiting');
        resolve(false);
      }, timeoutMs);
      unref(timeout);
      void inFlight.then(() => {
        this.#timers.clearTimeout(timeout);
        resolve(true);
      });
    });
    return this.#stopping;
  }

  #schedule(delayMs: number): void {
    this.#clearTimer();
    const handle = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      void this.runNow();
    }, delayMs);
    unref(handle);
    this.#timer = handle;
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #runOnce(): Promise<void> {
    const startedAt = this.#now();
    let ok = false;
    try {
      await this.#options.run(this.#controller.signal);
      ok = true;
    } catch (err) {
      this.#handleError(err);
    }
    const durationMs = Math.max(0, this.#now() - startedAt);
    try {
      this.#options.onRunFinished?.(durationMs, ok);
    } catch (err) {
      this.#logger.warn({ err }, 'onRunFinished hook failed');
    }
    this.#inFlight = undefined;
    if (this.#state === 'started') {
      const interval = this.#options.intervalMs;
      const delay = Math.min(interval, Math.max(0, startedAt + interval - this.#now()));
      if (delay === 0) this.#logger.debug({ durationMs, intervalMs: interval }, 'run overran its interval; next run starts now');
      this.#schedule(delay);
    }
  }

  #handleError(err: unknown): void {
    if (this.#controller.signal.aborted) {
      this.#logger.debug({ err }, 'run ended by stop');
      return;
    }
    this.#logger.warn({ err }, 'job run failed; the next run retries');
    try {
      this.#options.onError?.(err);
    } catch (hookErr) {
      this.#logger.warn({ err: hookErr }, 'onError hook failed');
    }
  }
}
