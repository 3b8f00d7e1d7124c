export interface AdaptiveLimiterOptions {
  /** Requests in flight at most; also where the limit starts. */
  readonly maxConcurrency: number;
  /** Optional hard cap: admissions at least 1000/rate ms apart. 0 = none. */
  readonly requestsPerSecond: number;
  /**
   * Longest pause a Retry-After may impose on every request (the transport's
   * retryMaxDelayMillis): a longer one fails its own call, and the next cycle must not hang.
   */
  readonly maxPauseMs?: number;
  readonly now: () => number;
  /** Rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Handed out by acquire(); report how the request went exactly once. */
export interface Permit {
  /** `throttled`: 429, or any answer carrying Retry-After. */
  release(outcome: 'ok' | 'throttled' | 'failed', retryAfterMs?: number): void;
}

const DECREASE_FACTOR = 0.5;

/**
 * Client-wide admission of Pulumi Cloud requests with an AIMD concurrency limit: it starts
 * at `maxConcurrency`, halves on a throttled answer (once per round trip: answers to requests
 * sent before the last decrease do not halve it again) and grows by one per `limit`
 * successful answers back to the cap. A Retry-After pauses every admission until it has
 * passed. Callers are admitted first come, first served; an aborted caller leaves the queue
 * at once.
 */
export class AdaptiveLimiter {
  private current: number;
  private successes = 0;
  private inFlight = 0;
  private pausedUntil = 0;
  private nextStartAt = 0;
  private admitted = 0;
  private decreasedAtAdmission = -1;
  private tail: Promise<unknown> = Promise.resolve();
  private wake: (() => void) | undefined;
  private readonly intervalMs: number;

  constructor(private readonly o: AdaptiveLimiterOptions) {
    if (!Number.isInteger(o.maxConcurrency) || o.maxConcurrency < 1) throw new RangeError('maxConcurrency must be a positive integer');
    if (!(o.requestsPerSecond >= 0)) throw new RangeError('requestsPerSecond must be >= 0');
    this.current = o.maxConcurrency;
    this.intervalMs = o.requestsPerSecond > 0 ? 1000 / o.requestsPerSecond : 0;
  }

  /** The concurrency limit now (1..maxConcurrency). */
  get limit(): number {
    return this.current;
  }

  /** Resolves when the request may start; rejects with the signal's reason once it aborts. */
  acquire(signal?: AbortSignal): Promise<Permit> {
    const turn = this.tail.then(() => this.admit(signal));
    this.tail = turn.catch(() => undefined);
    if (signal === undefined) return turn;
    // Leave the queue at once on abort; admit() skips the turn when it comes.
    return new Promise<Permit>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      turn.then(
        (permit) => {
          signal.removeEventListener('abort', onAbort);
          if (!signal.aborted) return resolve(permit);
          permit.release('failed');
          reject(signal.reason);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private async admit(signal: AbortSignal | undefined): Promise<Permit> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.o.now();
      const waitMs = Math.max(this.pausedUntil, this.nextStartAt) - now;
      if (waitMs > 0) {
        await this.o.sleep(Math.ceil(waitMs), signal);
        continue;
      }
      if (this.inFlight < this.limit) {
        this.inFlight += 1;
        this.nextStartAt = now + this.intervalMs;
        const seq = this.admitted++;
        let released = false;
        return {
          release: (outcome, retryAfterMs) => {
            if (released) return;
            released = true;
            this.settle(seq, outcome, retryAfterMs);
          },
        };
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  private settle(seq: number, outcome: 'ok' | 'throttled' | 'failed', retryAfterMs: number | undefined): void {
    this.inFlight -= 1;
    if (outcome === 'throttled') {
      if (seq > this.decreasedAtAdmission) {
        this.current = Math.max(1, Math.floor(this.current * DECREASE_FACTOR));
        this.successes = 0;
        this.decreasedAtAdmission = this.admitted - 1;
      }
      if (retryAfterMs !== undefined) {
        const pauseMs = Math.min(retryAfterMs, this.o.maxPauseMs ?? Number.POSITIVE_INFINITY);
        this.pausedUntil = Math.max(this.pausedUntil, this.o.now() + pauseMs);
      }
    } else if (outcome === 'ok' && this.current < this.o.maxConcurrency) {
      this.successes += 1;
      if (this.successes >= this.current) {
        this.current += 1;
        this.successes = 0;
      }
    }
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
