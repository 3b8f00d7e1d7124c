import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StackRef } from '../../../src/domain/stack.js';
import { BackfillProgress, type BackfillMetrics } from '../../../src/sync/backfill-progress.js';

const T0 = 1_800_000_000_000;

function stack(i: number): StackRef {
  return { org: 'acme', project: 'web', stack: `s${i}` };
}

function setup(intervalMs = 5_000) {
  const clock = { ms: T0, now: () => clock.ms };
  const out: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk.toString());
        done();
      },
    }),
  );
  const gauges = { backlog: [] as number[], pending: [] as number[] };
  const metrics: BackfillMetrics = {
    setBacklog: (n) => gauges.backlog.push(n),
    setBackfillStacksPending: (n) => gauges.pending.push(n),
  };
  const progress = new BackfillProgress({ clock, logger, intervalMs, metrics });
  const lines = (): Array<Record<string, unknown> & { msg: string }> =>
    out
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown> & { msg: string });
  const advance = (seconds: number): void => {
    clock.ms += seconds * 1000;
  };
  return { progress, gauges, lines, advance };
}

/** Reads the history of `n` stacks from `from` on, each with `updates` new updates. */
function readStacks(progress: BackfillProgress, from: number, n: number, updates: number): void {
  for (let i = from; i < from + n; i++) progress.historyRead(stack(i), updates);
}

describe('BackfillProgress', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('estimates the updates of unread stacks from those read, so the ETA covers the whole first run', () => {
    const { progress, advance } = setup();
    progress.beginCycle();
    progress.orgListed(100);
    progress.listingFinished(true, 100);
    readStacks(progress, 0, 10, 3);
    for (let i = 0; i < 30; i++) progress.exported();
    for (let i = 0; i < 10; i++) progress.stackDone(stack(i));
    advance(10);
    const snap = progress.snapshot();
    expect(snap).toMatchObject({ stacksListed: 100, stacksToRead: 100, stacksRead: 10, stacksPending: 90, updatesDiscovered: 30, updatesExported: 30 });
    // 30 known + 90 unread stacks x 3 = 300 updates; 270 left at 3 per second.
    expect(snap.updatesEstimated).toBe(300);
    expect(snap.etaSeconds).toBe(90);
  });

  it('takes the longer of the update-rate and stack-rate estimates', () => {
    const { progress, advance } = setup();
    progress.beginCycle();
    progress.listingFinished(true, 10);
    // Five stacks without updates done in 10 s: the update rate says nothing about the rest.
    for (let i = 0; i < 5; i++) {
      progress.historyRead(stack(i), 0);
      progress.stackDone(stack(i));
    }
    progress.historyRead(stack(5), 4);
    progress.exported();
    advance(10);
    // updates: 4 + 4 unread x 4/6 -> 7 in total, 6 left at 0.1/s = 60 s; stacks: 5 left at 0.5/s = 10 s.
    expect(progress.snapshot().updatesEstimated).toBe(7);
    expect(progress.snapshot().etaSeconds).toBe(60);
  });

  it('gives no ETA while listing or before anything finished, and 0 when nothing is left', () => {
    const { progress, advance } = setup();
    progress.beginCycle();
    advance(3);
    expect(progress.snapshot()).toMatchObject({ phase: 'listing', etaSeconds: undefined, stacksToRead: undefined });
    progress.listingFinished(true, 2);
    advance(1);
    expect(progress.snapshot().etaSeconds).toBeUndefined();
    readStacks(progress, 0, 2, 1);
    progress.exported();
    progress.exported();
    progress.stackDone(stack(0));
    progress.stackDone(stack(1));
    expect(progress.snapshot().etaSeconds).toBe(0);
  });

  it('feeds the pending-stacks gauge: set when listing ends, one less per stack read or failed, 0 after the cycle', () => {
    const { progress, gauges } = setup();
    progress.beginCycle();
    progress.listingFinished(true, 3);
    progress.historyRead(stack(0), 2);
    progress.stackDone(stack(0));
    progress.stackDone(stack(1)); // its history read failed
    progress.historyRead(stack(2), 0);
    progress.historyRead(stack(2), 0); // counted once
    expect(gauges.pending).toEqual([3, 2, 2, 1, 0, 0]);
    expect(progress.snapshot().stacksPending).toBe(0);
    progress.exported();
    expect(gauges.backlog.at(-1)).toBe(1);
    progress.finishCycle('success');
    expect(gauges.pending.at(-1)).toBe(0);
  });

  it('logs a line per interval while there is work, with the ETA marked as an estimate', () => {
    const { progress, lines, advance } = setup(5_000);
    progress.beginCycle();
    advance(5);
    vi.advanceTimersByTime(5_000);
    progress.orgListed(40);
    progress.listingFinished(true, 40);
    readStacks(progress, 0, 4, 2);
    for (let i = 0; i < 8; i++) progress.exported();
    for (let i = 0; i < 4; i++) progress.stackDone(stack(i));
    advance(4);
    vi.advanceTimersByTime(5_000);
    const [listing, reading] = lines();
    expect(listing!.msg).toBe('backfill progress: listing stacks, 0 listed so far; ETA unknown until every org is listed');
    expect(reading).toMatchObject({ stacksRead: 4, stacksPending: 36, updatesDiscovered: 8, updatesExported: 8, updatesEstimated: 80, etaSeconds: 36, etaIsEstimate: true });
    expect(reading!.msg).toBe('backfill progress: 4/40 stacks read, 8/8 discovered updates exported, ETA ~36 s (estimate)');
  });

  it('ends the first run with a line saying how long it took and what it exported', () => {
    const { progress, lines, advance } = setup();
    progress.beginCycle();
    progress.listingFinished(true, 1);
    progress.historyRead(stack(0), 2);
    progress.eventsRead(120);
    progress.exported();
    progress.exported();
    progress.stackDone(stack(0));
    advance(62.4);
    const finished = progress.finishCycle('success');
    expect(lines().at(-1)).toMatchObject({
      msg: 'first run finished in 62 s: 2 updates and 120 events exported from 1 stacks',
      firstRun: true,
      updatesExported: 2,
      events: 120,
      durationSeconds: 62.4,
    });
    expect(progress.lastFinished()).toEqual(finished);
    expect(progress.snapshot()).toMatchObject({ phase: 'idle', firstRun: false });
  });

  it('keeps later short cycles quiet: no listing lines and no closing line unless progress was logged', () => {
    const { progress, lines } = setup(1_000);
    progress.beginCycle();
    progress.listingFinished(true, 0);
    progress.finishCycle('success');
    const afterFirst = lines().length;
    progress.beginCycle();
    vi.advanceTimersByTime(3_000);
    progress.listingFinished(true, 1);
    progress.historyRead(stack(0), 0);
    progress.stackDone(stack(0));
    vi.advanceTimersByTime(3_000);
    progress.finishCycle('success');
    expect(lines().length).toBe(afterFirst);
  });

  it('says when a cycle ended with failures', () => {
    const { progress, lines } = setup();
    progress.beginCycle();
    progress.listingFinished(false, 0);
    progress.finishCycle('failure');
    expect(lines().at(-1)!.msg).toBe('first run ended with failures (the rest is retried next cycle) in 0 s: 0 updates and 0 events exported from 0 stacks');
  });
});
