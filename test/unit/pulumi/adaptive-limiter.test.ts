import { describe, expect, it } from 'vitest';
import { AdaptiveLimiter, type Permit } from '../../../src/pulumi/adaptive-limiter.js';

/** A clock that moves only when the limiter sleeps; sleeps resolve in time order. */
function manualClock() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleeps,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      t += ms;
    },
  };
}

function limiter(maxConcurrency: number, requestsPerSecond = 0) {
  const clock = manualClock();
  return { clock, l: new AdaptiveLimiter({ maxConcurrency, requestsPerSecond, now: clock.now, sleep: clock.sleep }) };
}

/** Acquires `n` permits concurrently; resolves with those granted before the queue stalls. */
async function grab(l: AdaptiveLimiter, n: number, signal?: AbortSignal): Promise<{ granted: Permit[]; pending: Array<Promise<Permit>> }> {
  const granted: Permit[] = [];
  const all = Array.from({ length: n }, () => l.acquire(signal));
  for (const p of all) void p.then((permit) => granted.push(permit), () => undefined);
  await new Promise((r) => setTimeout(r, 10));
  return { granted, pending: all };
}

describe('AdaptiveLimiter', () => {
  it('pauses every request for a Retry-After, but never longer than maxPauseMs', async () => {
    const clock = manualClock();
    const l = new AdaptiveLimiter({ maxConcurrency: 2, requestsPerSecond: 0, maxPauseMs: 30_000, now: clock.now, sleep: clock.sleep });
    (await l.acquire()).release('throttled', 3_600_000);
    (await l.acquire()).release('ok');
    expect(clock.sleeps).toEqual([30_000]);
    expect(clock.now()).toBe(30_000);
  });

  it('starts at the concurrency cap and admits the next caller only when a permit is released', async () => {
    const { l } = limiter(3);
    const { granted, pending } = await grab(l, 4);
    expect(l.limit).toBe(3);
    expect(granted).toHaveLength(3);
    granted[0]!.release('ok');
    await pending[3];
    expect(granted).toHaveLength(4);
  });

  it('halves once per round trip under a 429 storm, down to 1, then recovers additively to the cap', async () => {
    const { l } = limiter(8);
    const limits: number[] = [];
    // Each round: every admitted request is throttled at once (the whole window answers 429).
    for (let round = 0; round < 5; round += 1) {
      const { granted } = await grab(l, l.limit);
      for (const p of granted) p.release('throttled');
      limits.push(l.limit);
    }
    // Eight 429s of one window halve the limit once, not eight times.
    expect(limits).toEqual([4, 2, 1, 1, 1]);
    let successes = 0;
    while (l.limit < 8) {
      const permit = await l.acquire();
      permit.release('ok');
      successes += 1;
      if (successes > 100) break;
    }
    // +1 per `limit` successes: 1 + 2 + ... + 7 answers from 1 back to 8.
    expect(successes).toBe(28);
    expect(l.limit).toBe(8);
  });

  it('starts no request before Retry-After has passed, for any caller', async () => {
    const { l, clock } = limiter(4);
    const first = await l.acquire();
    first.release('throttled', 2_000);
    const next = await l.acquire();
    expect(clock.now()).toBe(2_000);
    expect(clock.sleeps).toEqual([2_000]);
    next.release('ok');
  });

  it('does not change the limit on failures that are not throttling', async () => {
    const { l } = limiter(4);
    (await l.acquire()).release('failed');
    expect(l.limit).toBe(4);
  });

  it('lets an aborted caller leave the queue at once without leaking its turn', async () => {
    const { l } = limiter(1);
    const holder = await l.acquire();
    const stop = new AbortController();
    const waiting = l.acquire(stop.signal);
    const after = l.acquire();
    stop.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
    holder.release('ok');
    // The aborted caller never held a permit, so the next caller gets the only one.
    const p = await after;
    p.release('ok');
    expect(l.limit).toBe(1);
  });

  it('spaces admissions by the optional hard cap', async () => {
    const { l, clock } = limiter(8, 4);
    const starts: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      (await l.acquire()).release('ok');
      starts.push(clock.now());
    }
    expect(starts).toEqual([0, 250, 500, 750]);
  });
});
