import { describe, expect, it } from 'vitest';
import { KeyedQueue } from '../../../src/scheduler/keyed-queue.js';

/** A run that ends when the test says so. */
function gate(): { promise: Promise<void>; open(): void; fail(err: Error): void } {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

describe('KeyedQueue', () => {
  it('runs a request at once when its key is idle', async () => {
    const queue = new KeyedQueue<string>();
    await expect(queue.request('a', async () => 'done')).resolves.toBe('done');
    expect(queue.busy('a')).toBe(false);
  });

  it('never runs two works of one key at the same time, and coalesces a storm into one more run', async () => {
    const queue = new KeyedQueue<number>();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const first = gate();
    const gates = [first];
    const work = async (): Promise<number> => {
      const mine = gates[runs] ?? gate();
      runs += 1;
      active += 1;
      maxActive = Math.max(maxActive, active);
      await mine.promise;
      active -= 1;
      return runs;
    };
    const running = queue.request('stack', work);
    const storm = Array.from({ length: 50 }, () => queue.request('stack', work));
    expect(runs).toBe(1);
    expect(queue.busy('stack')).toBe(true);
    gates.push(gate());
    first.open();
    await running;
    gates[1]!.open();
    const results = await Promise.all(storm);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
    // Every request of the storm shares the one queued run.
    expect(new Set(results)).toEqual(new Set([2]));
    expect(queue.busy('stack')).toBe(false);
  });

  it('keeps keys independent', async () => {
    const queue = new KeyedQueue<string>();
    const a = gate();
    const slow = queue.request('a', async () => {
      await a.promise;
      return 'a';
    });
    await expect(queue.request('b', async () => 'b')).resolves.toBe('b');
    a.open();
    await expect(slow).resolves.toBe('a');
  });

  it('runs the queued work after a failed run, and the failure reaches only its own callers', async () => {
    const queue = new KeyedQueue<string>();
    const g = gate();
    const failing = queue.request('k', async () => {
      await g.promise;
      return 'never';
    });
    const after = queue.request('k', async () => 'second');
    g.fail(new Error('history read failed'));
    await expect(failing).rejects.toThrow('history read failed');
    await expect(after).resolves.toBe('second');
  });

  it('turns a work that throws synchronously into a rejection', async () => {
    const queue = new KeyedQueue<string>();
    const work = (): Promise<string> => {
      throw new Error('sync throw');
    };
    await expect(queue.request('k', work)).rejects.toThrow('sync throw');
    expect(queue.busy('k')).toBe(false);
  });
});
