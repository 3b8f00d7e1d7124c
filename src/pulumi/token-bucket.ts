/**
 * Client-wide request rate limit: a token bucket refilled at `ratePerSecond` holding at
 * most `burst` tokens. Callers are served first come, first served, so one waiter sleeps
 * at a time instead of every caller polling. Time comes from injected `now`/`sleep`.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();
  private readonly rate: number;
  private readonly burst: number;

  constructor(
    ratePerSecond: number,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
    burst: number = Math.max(1, ratePerSecond),
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    this.rate = ratePerSecond / 1000;
    this.burst = Math.max(1, burst);
    this.tokens = this.burst;
    this.last = now();
  }

  /** Resolves when one token has been taken. */
  take(): Promise<void> {
    const turn = this.tail.then(() => this.takeOne());
    // A rejected sleep must not block later callers.
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.rate);
      this.last = t;
    }
  }

  private async takeOne(): Promise<void> {
    this.refill();
    while (this.tokens < 1) {
      await this.sleep(Math.ceil((1 - this.tokens) / this.rate));
      this.refill();
    }
    this.tokens -= 1;
  }
}
