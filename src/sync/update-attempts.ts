/** What failed about one update; each kind counts its own failures in a row. */
export type AttemptKind = 'events' | 'conversion' | 'trace';

/**
 * Counts, per update and failure kind, the cycles in a row that failed with an error
 * specific to that update (malformed events, a trace the collector refuses). Any other
 * outcome for the update (success, or an outage-like retryable failure) clears its counts.
 * Kept in memory: after a restart an update gets its attempts again, which only delays
 * the fallback.
 */
export class UpdateAttempts {
  private readonly failures = new Map<string, number>();

  /** Records one more failure of this kind and returns how many there have been in a row. */
  fail(updateId: string, kind: AttemptKind): number {
    const key = `${kind}:${updateId}`;
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    return n;
  }

  clear(updateId: string): void {
    for (const kind of ['events', 'conversion', 'trace'] as const) this.failures.delete(`${kind}:${updateId}`);
  }

  get size(): number {
    return this.failures.size;
  }
}
