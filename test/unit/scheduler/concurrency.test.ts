import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mapWithConcurrency } from '../../../src/scheduler/concurrency.js';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('mapWithConcurrency', () => {
  it('never has more than `limit` calls in flight and returns results in input order', async () => {
    let active = 0;
    let maxActive = 0;
    const delays = [50, 10, 40, 5, 30, 20, 1];
    const done = mapWithConcurrency(delays, 3, async (delay, index) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(delay);
      active--;
      return `${index}:${delay}`;
    });
    await vi.runAllTimersAsync();
    const results = await done;
    expect(maxActive).toBe(3);
    expect(results).toEqual(delays.map((delay, index) => ({ status: 'fulfilled', value: `${index}:${delay}` })));
  });

  it('keeps each rejection as that item settled result instead of rejecting the whole', async () => {
    const err = new Error('stack b failed');
    const results = await mapWithConcurrency(['a', 'b', 'c'], 2, async (item) => {
      if (item === 'b') throw err;
      return item.toUpperCase();
    });
    expect(results).toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: err },
      { status: 'fulfilled', value: 'C' },
    ]);
  });

  it('collects a synchronous throw as a rejection too', async () => {
    const results = await mapWithConcurrency([1], 1, () => {
      throw new Error('sync');
    });
    expect(results[0]).toEqual({ status: 'rejected', reason: new Error('sync') });
  });

  it('starts no new item once the signal aborts; started items finish', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const done = mapWithConcurrency(
      [0, 1, 2, 3],
      2,
      async (item) => {
        started.push(item);
        await sleep(100);
        return item;
      },
      controller.signal,
    );
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error('stopping'));
    await vi.runAllTimersAsync();
    const results = await done;
    expect(started).toEqual([0, 1]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(results[2]).toEqual({ status: 'rejected', reason: new Error('stopping') });
  });

  it('returns an empty list for no items and rejects a limit below 1', async () => {
    await expect(mapWithConcurrency([], 4, async () => 1)).resolves.toEqual([]);
    await expect(mapWithConcurrency([1], 0, async () => 1)).rejects.toThrow(RangeError);
  });
});
