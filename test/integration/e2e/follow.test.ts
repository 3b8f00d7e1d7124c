import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import type { Config } from '../../../src/config/schema.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { StackRef } from '../../../src/domain/stack.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthUpdate } from '../../../src/simulator/simulator-truth.js';
import { sumOf } from '../../helpers/exposition.js';
import { configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../helpers/postgres.js';
import { eventually } from '../../helpers/processes.js';

/*
 * Following running updates on the live simulator: each control.tick() reveals the next few
 * engine events of a running update, and the simulator ends the update (history result and
 * end time) with the tick that reveals its last event.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const postgresReady = await postgresAvailable();
let testDatabase: TestDatabase | undefined;
async function database(): Promise<TestDatabase> {
  testDatabase ??= await createTestDatabase();
  return testDatabase;
}
afterAll(async () => {
  await testDatabase?.drop();
});

async function setup(): Promise<{ sim: RunningSimulator; receiver: OtlpReceiver; dir: string }> {
  const sim = await startTestSimulator({ seed: 5, tickEvents: 3 });
  const receiver = await startOtlpReceiver();
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup(), () => sim.close(), () => receiver.close());
  return { sim, receiver, dir: tmp.dir };
}

function followingConfig(sim: RunningSimulator, statePath: string, receiver: OtlpReceiver, followIntervalSeconds = 5, timeoutMillis = 5_000): Config {
  return configFor(sim, statePath, {
    poll: { followIntervalSeconds },
    traces: { exporter: 'otlp', endpoint: receiver.url, timeoutMillis },
  });
}

function track(app: App): App {
  cleanups.push(() => app.stop());
  return app;
}

function build(config: Config, clock?: { now(): number }): App {
  return track(createApp(config, silentLogger(), { http: false, ...(clock === undefined ? {} : { clock }) }));
}

/** The generated stack with the most resources, so its updates have many steps. */
function biggestStack(sim: RunningSimulator): StackRef {
  const stacks = sim.truth().stacks.filter((s) => s.project !== 'pulumi-samples');
  const s = stacks.reduce((a, b) => (b.resourceCount > a.resourceCount ? b : a));
  return { org: s.org, project: s.project, stack: s.stack };
}

function truthOf(sim: RunningSimulator, updateId: string): TruthUpdate {
  const u = sim.truth().stacks.flatMap((s) => s.updates).find((x) => x.updateId === updateId);
  if (u === undefined) throw new Error(`the simulator has no update ${updateId}`);
  return u;
}

function spansOf(receiver: OtlpReceiver, traceId: string): DecodedSpan[] {
  return receiver.spans().filter((s) => s.traceId === traceId);
}

/** Spans in a comparable form, ordered by span id. */
function comparable(spans: readonly DecodedSpan[]): unknown[] {
  return [...spans]
    .sort((a, b) => (a.spanId < b.spanId ? -1 : 1))
    .map((s) => ({ ...s, startTimeUnixNano: String(s.startTimeUnixNano), endTimeUnixNano: String(s.endTimeUnixNano), events: s.events.map((e) => ({ ...e, timeUnixNano: String(e.timeUnixNano) })) }));
}

/** The trace an exporter that does not follow sends for the (ended) update: today's trace. */
async function referenceTrace(sim: RunningSimulator, dir: string, traceId: string): Promise<DecodedSpan[]> {
  const receiver = await startOtlpReceiver();
  cleanups.push(() => receiver.close());
  const app = build(followingConfig(sim, `${dir}/reference.db`, receiver, 0));
  expect(app.followOnce()).toBeUndefined();
  expect((await app.runOnce()).result).toBe('success');
  return spansOf(receiver, traceId);
}

describe('following a running update', () => {
  it('sends step spans while the update runs, the root at its end, keeps the in-progress gauges exact and sends the same trace as without following', async () => {
    const { sim, receiver, dir } = await setup();
    const app = build(followingConfig(sim, `${dir}/state.db`, receiver));
    expect((await app.runOnce()).result).toBe('success');
    const base = await scrape(app);
    const ref = biggestStack(sim);
    const labels = { ...ref, kind: 'update' };

    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    const traceId = traceIdFor(ref, updateId);
    const startTime = truthOf(sim, updateId).startTime;
    sim.control.tick();
    // The poll cycle sees the update running; from then on the follow rounds follow it.
    await app.runOnce();

    const stepsSeenWhileRunning: number[] = [];
    for (let round = 0; truthOf(sim, updateId).result === 'in-progress'; round++) {
      expect(round).toBeLessThan(500);
      sim.resetStats();
      const followed = await app.followOnce();
      expect(followed?.stacks).toBe(1);
      // A round costs one history page and the events after the last token: the new page and
      // the call that gets the same token back (shared pulumi-api.md section 2.7).
      expect(sim.stats().byEndpoint.listUpdates).toBe(1);
      expect(sim.stats().byEndpoint.engineEvents).toBeLessThanOrEqual(2);
      const now = await scrape(app);
      expect(sumOf(now, 'pulumi_stack_update_in_progress', labels)).toBe(1);
      expect(sumOf(now, 'pulumi_stack_update_started_timestamp_seconds', labels)).toBe(startTime);
      expect(sumOf(now, 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total'));
      const spans = spansOf(receiver, traceId);
      expect(spans.filter((s) => s.parentSpanId === '')).toEqual([]);
      stepsSeenWhileRunning.push(spans.length);
      sim.control.tick();
    }
    // Spans came in over several rounds, while the update ran.
    expect(stepsSeenWhileRunning.at(-1)).toBeGreaterThan(0);
    expect(new Set(stepsSeenWhileRunning.filter((n) => n > 0)).size).toBeGreaterThan(1);
    const earlyFollowed = sumOf(await scrape(app), 'pulumi_exporter_spans_followed_total');
    expect(earlyFollowed).toBe(stepsSeenWhileRunning.at(-1));

    // The update ended: the next round exports the root and the rest, and counts it once,
    // reading on from the last token rather than the whole stream again.
    sim.resetStats();
    await app.followOnce();
    expect(sim.stats().byEndpoint.engineEvents).toBe(1);
    const spans = spansOf(receiver, traceId);
    expect(spans.filter((s) => s.parentSpanId === '')).toHaveLength(1);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
    const after = await scrape(app);
    const truth = truthOf(sim, updateId);
    expect(sumOf(after, 'pulumi_stack_update_in_progress', labels)).toBe(0);
    expect(sumOf(after, 'pulumi_stack_update_started_timestamp_seconds', labels)).toBe(0);
    expect(sumOf(after, 'pulumi_updates_total', { ...labels, result: 'succeeded' })).toBe(
      sumOf(base, 'pulumi_updates_total', { ...labels, result: 'succeeded' }) + 1,
    );
    expect(sumOf(after, 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total') + 1);
    expect(sumOf(after, 'pulumi_stack_last_update_duration_seconds', labels)).toBe(truth.endTime! - truth.startTime);
    expect(await app.store.readFollow(ref, updateId)).toBeUndefined();
    await app.runOnce();
    await app.followOnce();
    expect(spansOf(receiver, traceId)).toHaveLength(spans.length);
    expect(sumOf(await scrape(app), 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total') + 1);

    expect(comparable(spans)).toEqual(comparable(await referenceTrace(sim, dir, traceId)));
  });

  it('runs the follow rounds on their own schedule once started', async () => {
    const { sim, receiver, dir } = await setup();
    const app = build(followingConfig(sim, `${dir}/state.db`, receiver, 0.2));
    await app.start();
    // The first poll cycle runs at start; the next one only in an hour.
    await eventually(async () => app.lastPoll(), 60_000, 'the first poll cycle');
    const ref = biggestStack(sim);
    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    const traceId = traceIdFor(ref, updateId);
    sim.control.tick();
    // Seen running by a poll cycle (runOnce joins none: the scheduled one is over).
    await app.runOnce();
    // One tick at a time, leaving the job time to follow, until spans arrive.
    await eventually(
      async () => {
        if (spansOf(receiver, traceId).length > 0) return true;
        sim.control.tick();
        expect(truthOf(sim, updateId).result).toBe('in-progress');
        return undefined;
      },
      30_000,
      'spans sent by the follow job',
    );
    expect(spansOf(receiver, traceId).filter((s) => s.parentSpanId === '')).toEqual([]);
    sim.control.completeUpdate(ref, updateId);
    await eventually(
      async () => (spansOf(receiver, traceId).some((s) => s.parentSpanId === '') ? true : undefined),
      30_000,
      'the root span sent by the follow job',
    );
    expect(sumOf(await scrape(app), 'pulumi_stack_update_in_progress', { ...ref, kind: 'update' })).toBe(0);
  });

  for (const kind of ['sqlite', 'postgres'] as const) {
    it(`loses and repeats no span when the exporter restarts in the middle of an update (${kind} store)`, async (ctx) => {
      if (kind === 'postgres' && !postgresReady) {
        ctx.skip();
        return;
      }
      const { sim, receiver, dir } = await setup();
      const statePath = kind === 'sqlite' ? `${dir}/state.db` : await (await database()).schemaUrl();
      const config = followingConfig(sim, statePath, receiver);
      const first = build(config);
      expect((await first.runOnce()).result).toBe('success');
      const ref = biggestStack(sim);
      sim.control.advanceClock(600);
      const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
      const traceId = traceIdFor(ref, updateId);
      const total = truthOf(sim, updateId).eventCount;
      expect(total).toBeGreaterThan(30);
      sim.control.tick();
      await first.runOnce();
      // Follow until about a third of the events are out, then stop.
      while (spansOf(receiver, traceId).length === 0 || (await first.store.readFollow(ref, updateId))!.eventsRead < total / 3) {
        sim.control.tick();
        await first.followOnce();
        expect(truthOf(sim, updateId).result).toBe('in-progress');
      }
      const beforeRestart = spansOf(receiver, traceId).length;
      const record = await first.store.readFollow(ref, updateId);
      expect(record?.sentSpanIds).toHaveLength(beforeRestart);
      await first.stop();

      // Events go on while the exporter is down.
      sim.control.tick();
      expect(truthOf(sim, updateId).result).toBe('in-progress');
      const second = build(config);
      await second.runOnce();
      expect(spansOf(receiver, traceId).filter((s) => s.parentSpanId === '')).toEqual([]);
      while (truthOf(sim, updateId).result === 'in-progress') {
        await second.followOnce();
        sim.control.tick();
      }
      await second.followOnce();
      const spans = spansOf(receiver, traceId);
      expect(spans.length).toBeGreaterThan(beforeRestart);
      expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
      expect(comparable(spans)).toEqual(comparable(await referenceTrace(sim, dir, traceId)));
      const stackTruth = sim.truth().stacks.find((s) => s.org === ref.org && s.project === ref.project && s.stack === ref.stack)!;
      expect(sumOf(await scrape(second), 'pulumi_updates_total', { ...ref, kind: 'update', result: 'succeeded' })).toBe(
        stackTruth.updates.filter((u) => u.kind === 'update' && u.result === 'succeeded').length,
      );
    });
  }

  it('follows each stack on the replica that holds its lease only: two replicas on PostgreSQL send every span once', async (ctx) => {
    if (!postgresReady) {
      ctx.skip();
      return;
    }
    const { sim, receiver, dir } = await setup();
    const config = followingConfig(sim, await (await database()).schemaUrl(), receiver);
    const replicas = [build(config), build(config)];
    await Promise.all(replicas.map((r) => r.runOnce()));
    await Promise.all(replicas.map((r) => r.runOnce()));
    const ref = biggestStack(sim);
    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    const traceId = traceIdFor(ref, updateId);
    sim.control.tick();
    await Promise.all(replicas.map((r) => r.runOnce()));
    const rounds = [0, 0];
    while (truthOf(sim, updateId).result === 'in-progress') {
      const results = await Promise.all(replicas.map((r) => r.followOnce()));
      results.forEach((r, i) => (rounds[i]! += r?.stacks ?? 0));
      sim.control.tick();
    }
    await Promise.all(replicas.map((r) => r.followOnce()));
    await Promise.all(replicas.map((r) => r.runOnce()));
    // One replica followed the stack, the other never did.
    expect(rounds.filter((n) => n > 0)).toHaveLength(1);
    const spans = spansOf(receiver, traceId);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
    expect(comparable(spans)).toEqual(comparable(await referenceTrace(sim, dir, traceId)));
  });

  it('sends the spans the collector refused while the update ran in a later round, each once', async () => {
    const { sim, receiver, dir } = await setup();
    const app = build(followingConfig(sim, `${dir}/state.db`, receiver, 5, 700));
    await app.runOnce();
    const ref = biggestStack(sim);
    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    const traceId = traceIdFor(ref, updateId);
    sim.control.tick();
    await app.runOnce();
    let refused = 0;
    while (truthOf(sim, updateId).result === 'in-progress') {
      sim.control.tick();
      // Every other round the collector is down.
      const down = refused < 3 && spansOf(receiver, traceId).length > 0;
      if (down) receiver.failNext(503, 1_000);
      await app.followOnce();
      if (down) {
        receiver.failNext(503, 0);
        if (receiver.requests.some((r) => r.status === 503 && r.spans.some((x) => x.traceId === traceId))) refused += 1;
      }
    }
    await app.followOnce();
    // An update whose export failed at its end is no longer running: the poll cycle retries it.
    await app.runOnce();
    expect(refused).toBeGreaterThan(0);
    expect(sumOf(await scrape(app), 'pulumi_exporter_errors_total', { code: 'TRACE_EXPORT_FAILED' })).toBeGreaterThan(0);
    const spans = spansOf(receiver, traceId);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
    expect(comparable(spans)).toEqual(comparable(await referenceTrace(sim, dir, traceId)));
  });

  it('leaves an update that stops moving to the poll cycle, shows it running, and counts it once when it ends', async () => {
    const { sim, receiver, dir } = await setup();
    let nowMs = Date.now();
    const app = build(followingConfig(sim, `${dir}/state.db`, receiver), { now: () => nowMs });
    await app.runOnce();
    const base = await scrape(app);
    const ref = biggestStack(sim);
    const labels = { ...ref, kind: 'update' };
    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    sim.control.tick();
    await app.runOnce();
    expect((await app.followOnce())?.stacks).toBe(1);

    // No new event for longer than the idle time: the follow rounds skip the stack.
    nowMs += 6 * 60_000;
    await app.runOnce();
    sim.resetStats();
    expect((await app.followOnce())?.stacks).toBe(0);
    expect(sim.stats().total).toBe(0);
    let now = await scrape(app);
    expect(sumOf(now, 'pulumi_stack_update_in_progress', labels)).toBe(1);
    expect(sumOf(now, 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total'));

    // It moves again: the poll cycle sees new events and the follow rounds take it back.
    sim.control.tick();
    await app.runOnce();
    expect((await app.followOnce())?.stacks).toBe(1);

    sim.control.completeUpdate(ref, updateId);
    await app.followOnce();
    now = await scrape(app);
    expect(sumOf(now, 'pulumi_stack_update_in_progress', labels)).toBe(0);
    expect(sumOf(now, 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total') + 1);
    await app.runOnce();
    expect(sumOf(await scrape(app), 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total') + 1);
    expect(spansOf(receiver, traceIdFor(ref, updateId)).filter((s) => s.parentSpanId === '')).toHaveLength(1);
  });
});
