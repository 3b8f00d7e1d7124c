/**
 * Runs work one at a time per key, whoever asks for it (for stacks: the poll cycle, a
 * webhook delivery, the follower of a running update). A request for a key whose work is
 * running queues one more run after it; further requests join that queued run instead of
 * adding another, so a storm of requests costs at most the running run and one more. A
 * joined request gets the queued run's result: the first queued request's `work` is the one
 * that runs. A rejection settles only the requests that share that run.
 */
export class KeyedQueue<T> {
  private readonly running = new Map<string, Promise<T>>();
  private readonly queued = new Map<string, Promise<T>>();

  request(key: string, work: () => Promise<T>): Promise<T> {
    const waiting = this.queued.get(key);
    if (waiting !== undefined) return waiting;
    const current = this.running.get(key);
    if (current === undefined) return this.start(key, work);
    const next = current.then(
      () => this.startQueued(key, work),
      () => this.startQueued(key, work),
    );
    this.queued.set(key, next);
    return next;
  }

  /** True while work for `key` is running or queued. */
  busy(key: string): boolean {
    return this.running.has(key) || this.queued.has(key);
  }

  private startQueued(key: string, work: () => Promise<T>): Promise<T> {
    this.queued.delete(key);
    return this.start(key, work);
  }

  private start(key: string, work: () => Promise<T>): Promise<T> {
    const run: Promise<T> = (async () => work())().finally(() => {
      if (this.running.get(key) === run) this.running.delete(key);
    });
    this.running.set(key, run);
    return run;
  }
}
