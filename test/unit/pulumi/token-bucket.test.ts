import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../../src/pulumi/semaphore.js';
import { TokenBucket } from '../../../src/pulumi/token-bucket.js';
import { fakeTime } from './local-server.js';

describe('TokenBucket', () => {
  it('lets a burst through, then one request per 1/rate seconds', async () => {
    const time = fakeTime(0);
    const bucket = new TokenBucket(4, time.now, time.sleep);
    const taken: number[] = [];
    await Promise.all(Array.from({ length: 10 }, () => bucket.take().then(() => taken.push(time.now()))));
    expect(taken).toEqual([0, 0, 0, 0, 250, 500, 750, 1000, 1250, 1500]);
  });

  it('refills while idle but never above the burst', async () => {
    const time = fakeTime(0);
    const bucket = new TokenBucket(2, time.now, time.sleep);
    for (let i = 0; i < 2; i += 1) await bucket.take();
    await time.sleep(60_000);
    time.sleeps.length = 0;
    for (let i = 0; i < 3; i += 1) await bucket.take();
    expect(time.sleeps).toEqual([500]);
  });

  it('serves a fractional rate with a burst of one', async () => {
    const time = fakeTime(0);
    const bucket = new TokenBucket(0.5, time.now, time.sleep);
    await bucket.take();
    await bucket.take();
    expect(time.now()).toBe(2_000);
  });
});

describe('Semaphore', () => {
  it('admits at most capacity holders and hands permits over in FIFO order', async () => {
    const sem = new Semaphore(2);
    const order: string[] = [];
    const releases: Array<() => void> = [];
    const hold = (name: string) =>
      sem.run(
        () =>
          new Promise<void>((resolve) => {
            order.push(name);
            releases.push(resolve);
          }),
      );
    const all = Promise.all(['a', 'b', 'c', 'd'].map(hold));
    await Promise.resolve();
    expect(order).toEqual(['a', 'b']);
    expect(sem.inUse).toBe(2);
    releases.shift()?.();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a', 'b', 'c']);
    while (releases.length > 0) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await all;
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(sem.inUse).toBe(0);
  });

  it('releases the permit when the task throws', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(sem.run(() => Promise.resolve(7))).resolves.toBe(7);
  });
});
