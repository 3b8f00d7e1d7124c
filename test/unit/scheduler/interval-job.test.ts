import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, silentLogger } from '../../../src/logging/logger.js';
import { IntervalJob, type IntervalJobOptions, type TimerFunctions } from '../../../src/scheduler/interval-job.js';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function job(overrides: Partial<IntervalJobOptions> & Pick<IntervalJobOptions, 'run'>): IntervalJob {
  return new IntervalJob({ name: 'test', intervalMs: 1000, logger: silentLogger(), ...overrides });
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('IntervalJob', () => {
  it('starts the first run after a random delay within the initial jitter', async () => {
    const starts: number[] = [];
    const j = job({ initialJitterMs: 1000, random: () => 0.5, run: async () => void starts.push(Date.now()) });
    j.start();
    await vi.advanceTimersByTimeAsync(499);
    expect(starts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toEqual([500]);
    await j.stop(1000);
  });

  it('keeps the jitter within [0, initialJitterMs] at both ends of the random range', async () => {
    for (const [random, expected] of [
      [0, 0],
      [0.999999, 1000],
    ] as const) {
      const starts: number[] = [];
      const begin = Date.now();
      const j = job({
        intervalMs: 60_000,
        initialJitterMs: 1000,
        random: () => random,
        run: async () => void starts.push(Date.now() - begin),
      });
      j.start();
      await vi.advanceTimersByTimeAsync(1000);
      expect(starts).toEqual([expected]);
      await j.stop(1000);
    }
  });

  it('keeps the cadence: the next run starts one interval after the previous start', async () => {
    const starts: number[] = [];
    const j = job({
      run: async () => {
        starts.push(Date.now());
        await sleep(300);
      },
    });
    j.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect(starts).toEqual([0, 1000, 2000, 3000]);
    await j.stop(1000);
  });

  it('never overlaps a run that is slower than the interval, and starts the next one right after it', async () => {
    const starts: number[] = [];
    const durations: number[] = [];
    let active = 0;
    let maxActive = 0;
    const j = job({
      run: async () => {
        starts.push(Date.now());
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(2500);
        active--;
      },
      onRunFinished: (durationMs) => durations.push(durationMs),
    });
    j.start();
    await vi.advanceTimersByTimeAsync(6000);
    expect(maxActive).toBe(1);
    // "Right after" is the next timer tick: Node runs a 0 ms timeout after 1 ms.
    expect(starts).toEqual([0, 2501, 5002]);
    expect(durations).toEqual([2500, 2500]);
    const stopped = j.stop(5000);
    await vi.advanceTimersByTimeAsync(2500);
    await expect(stopped).resolves.toBe(true);
  });

  it('contains a failing run: logs it, passes it to onError, reports ok=false and runs again', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const errors: unknown[] = [];
    const finished: boolean[] = [];
    let calls = 0;
    const boom = new Error('boom');
    const j = new IntervalJob({
      name: 'sync',
      intervalMs: 1000,
      logger,
      run: () => {
        calls++;
        if (calls === 1) return Promise.reject(boom);
        if (calls === 2) throw new Error('sync throw');
        return Promise.resolve();
      },
      onError: (err) => {
        errors.push(err);
        throw new Error('a broken hook is contained too');
      },
      onRunFinished: (_durationMs, ok) => finished.push(ok),
    });
    j.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(calls).toBe(3);
    expect(errors).toEqual([boom, new Error('sync throw')]);
    expect(finished).toEqual([false, false, true]);
    const failures = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.msg === 'job run failed; the next run retries');
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatchObject({ level: 40, job: 'sync', module: 'scheduler', err: { message: 'boom' } });
    await j.stop(1000);
  });

  it('stop aborts the signal, waits for the in-flight run and schedules nothing more', async () => {
    let signal: AbortSignal | undefined;
    let runs = 0;
    let finished = false;
    const j = job({
      run: async (s) => {
        runs++;
        signal = s;
        await sleep(200);
        finished = true;
      },
    });
    j.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(j.running).toBe(true);
    const stopped = j.stop(1000);
    expect(signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(150);
    await expect(stopped).resolves.toBe(true);
    expect(finished).toBe(true);
    expect(j.running).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop gives up after its timeout when a run ignores the abort signal', async () => {
    const j = job({ run: () => new Promise<void>(() => undefined) });
    void j.runNow();
    let result: boolean | undefined;
    void j.stop(1000).then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toBe(false);
  });

  it('does not report an error for a run that fails because stop aborted it', async () => {
    const errors: unknown[] = [];
    const j = job({
      run: (signal) =>
        new Promise<void>((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason as Error));
        }),
      onError: (err) => errors.push(err),
    });
    void j.runNow();
    await expect(j.stop(1000)).resolves.toBe(true);
    expect(errors).toEqual([]);
  });

  it('stop is idempotent and start after stop does nothing', async () => {
    let runs = 0;
    const j = job({ initialJitterMs: 100, run: async () => void runs++ });
    j.start();
    const first = j.stop(1000);
    const second = j.stop(1000);
    expect(second).toBe(first);
    await expect(first).resolves.toBe(true);
    j.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(0);
    await j.runNow();
    expect(runs).toBe(0);
  });

  it('runNow runs immediately, returns the in-flight run when one is running, and restarts the cadence', async () => {
    const starts: number[] = [];
    const j = job({
      initialJitterMs: 10_000,
      random: () => 0.99,
      run: async () => {
        starts.push(Date.now());
        await sleep(100);
      },
    });
    j.start();
    await vi.advanceTimersByTimeAsync(200);
    const first = j.runNow();
    const second = j.runNow();
    expect(second).toBe(first);
    expect(starts).toEqual([200]);
    await vi.advanceTimersByTimeAsync(100);
    await first;
    // The jittered first run was replaced: the next one follows the runNow start.
    await vi.advanceTimersByTimeAsync(1000);
    expect(starts).toEqual([200, 1200]);
    await j.stop(1000);
  });

  it("unref's every timer so a job never keeps the process alive", async () => {
    const unrefs: number[] = [];
    let created = 0;
    const timers: TimerFunctions = {
      setTimeout: (callback, ms) => {
        const id = created++;
        return { handle: setTimeout(callback, ms), unref: () => void unrefs.push(id) };
      },
      clearTimeout: (h) => clearTimeout((h as { handle: ReturnType<typeof setTimeout> }).handle),
    };
    const j = job({ timers, run: () => sleep(100) });
    j.start();
    await vi.advanceTimersByTimeAsync(50);
    const stopped = j.stop(1000);
    expect(created).toBe(2);
    expect(unrefs).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(100);
    await expect(stopped).resolves.toBe(true);
  });

  it('rejects a non-positive interval', () => {
    expect(() => job({ intervalMs: 0, run: async () => undefined })).toThrow(RangeError);
  });
});
