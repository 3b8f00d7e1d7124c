/**
 * Counts, per update, the cycles in a row that failed with an error specific to that
 * update (malformed events, a trace the collector rejects). Kept in memory: after a
 * restart an update gets its attempts again, which only delays the fallback.
 */
export class UpdateAttempts {
  private readonly failures = new Map<string, number>();

  /** Records one more failure and returns how many there have been in a row. */
  fail(updateId: string): number {
    const n = (this.failures.get(updateId) ?? 0) + 1;
    this.failures.set(updateId, n);
    return n;
  }

  clear(updateId: string): void {
    this.failures.delete(updateId);
  }

  get size(): number {
    return this.failures.size;
  }
}
