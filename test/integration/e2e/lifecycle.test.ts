import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { dataSamples, sumOf } from '../../helpers/exposition.js';
import { buildApp, configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { startOtlpReceiver } from '../../helpers/otlp-receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(seed = 5): Promise<{ sim: RunningSimulator; statePath: string }> {
  const sim = await startTestSimulator({ seed });
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup(), () => sim.close());
  return { sim, statePath: `${tmp.dir}/state.db` };
}

function track(app: App): App {
  cleanups.push(() => app.stop());
  return app;
}

function completed(sim: RunningSimulator): number {
  return sim.truth().stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);
}

/** A stack of the generated data (not the fixture stack). */
function someStack(sim: RunningSimulator): { org: string; project: string; stack: string } {
  const s = sim.truth().stacks.find((x) => x.project !== 'pulumi-samples');
  if (!s) throw new Error('the simulator generated no stacks');
  return { org: s.org, project: s.project, stack: s.stack };
}

describe('restarts', () => {
  it('continues every counter from the same values after a restart and exports nothing twice', async () => {
    const { sim, statePath } = await setup();
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const config = configFor(sim, statePath, { traces: { exporter: 'otlp', endpoint: receiver.url, timeoutMillis: 5_000 } });

    const first = buildApp(config);
    expect((await first.runOnce()).result).toBe('success');
    const before = dataSamples(await scrape(first));
    const spansAfterFirst = receiver.spans().length;
    const exportedAfterFirst = await first.store.countExported();
    expect(exportedAfterFirst).toBe(completed(sim));
    await first.stop();

    const second = track(buildApp(config));
    const afterRestart = dataSamples(await scrape(second));
    expect(afterRestart.filter((s) => !s.name.startsWith('pulumi_stack_'))).toEqual(before.filter((s) => !s.name.startsWith('pulumi_stack_')));
    expect((await second.runOnce()).result).toBe('success');
    expect(dataSamples(await scrape(second))).toEqual(before);
    expect(receiver.spans().length).toBe(spansAfterFirst);
    expect(await second.store.countExported()).toBe(exportedAfterFirst);

    const ref = someStack(sim);
    const updateId = sim.control.addCompletedUpdate(ref, { kind: 'update', result: 'succeeded' });
    expect((await second.runOnce()).result).toBe('success');
    const after = await scrape(second);
    expect(sumOf(after, 'pulumi_updates_total')).toBe(sumOf(before, 'pulumi_updates_total') + 1);
    expect(sumOf(after, 'pulumi_updates_total', { ...ref, kind: 'update', result: 'succeeded' })).toBe(
      sumOf(before, 'pulumi_updates_total', { ...ref, kind: 'update', result: 'succeeded' }) + 1,
    );
    const roots = receiver.spans().filter((s) => s.parentSpanId === '' && s.traceId === traceIdFor(ref, updateId));
    expect(roots).toHaveLength(1);
    expect(await second.store.countExported()).toBe(exportedAfterFirst + 1);
  });
});

describe('updates in progress', () => {
  it('shows a running update in the gauges and counts it once, with its final result and duration, when it completes', async () => {
    const { sim, statePath } = await setup();
    const app = track(buildApp(configFor(sim, statePath)));
    await app.runOnce();
    const base = await scrape(app);
    const ref = someStack(sim);

    sim.control.advanceClock(600);
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'failed' });
    sim.control.tick();
    await app.runOnce();
    let now = await scrape(app);
    expect(sumOf(now, 'pulumi_stack_update_in_progress', { ...ref, kind: 'update' })).toBe(1);
    expect(sumOf(now, 'pulumi_stack_update_started_timestamp_seconds', { ...ref, kind: 'update' })).toBeGreaterThan(0);
    expect(sumOf(now, 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total'));

    sim.control.tick();
    await app.runOnce();
    expect(sumOf(await scrape(app), 'pulumi_updates_total')).toBe(sumOf(base, 'pulumi_updates_total'));

    sim.control.completeUpdate(ref, updateId);
    await app.runOnce();
    await app.runOnce();
    now = await scrape(app);
    expect(sumOf(now, 'pulumi_stack_update_in_progress', { ...ref, kind: 'update' })).toBe(0);
    expect(sumOf(now, 'pulumi_updates_total', { ...ref, kind: 'update', result: 'failed' })).toBe(
      sumOf(base, 'pulumi_updates_total', { ...ref, kind: 'update', result: 'failed' }) + 1,
    );
    const truthUpdate = sim.truth().stacks.flatMap((s) => s.updates).find((u) => u.updateId === updateId)!;
    expect(truthUpdate.endTime).toBeDefined();
    // Per stack the duration is a summary (the histogram is per project) and the last-update gauge.
    const durationDelta =
      sumOf(now, 'pulumi_stack_update_duration_seconds_sum', { ...ref, kind: 'update', result: 'failed' }) -
      sumOf(base, 'pulumi_stack_update_duration_seconds_sum', { ...ref, kind: 'update', result: 'failed' });
    expect(durationDelta).toBeCloseTo(truthUpdate.endTime! - truthUpdate.startTime, 6);
    expect(sumOf(now, 'pulumi_stack_last_update_duration_seconds', { ...ref, kind: 'update' })).toBeCloseTo(
      truthUpdate.endTime! - truthUpdate.startTime,
      6,
    );
  });
});

describe('efficiency', () => {
  it('makes only the stack-list calls in a cycle with no new updates', async () => {
    const { sim, statePath } = await setup();
    const app = track(buildApp(configFor(sim, statePath)));
    await app.runOnce();
    sim.resetStats();
    expect((await app.runOnce()).result).toBe('success');
    const stats = sim.stats();
    expect(stats.byEndpoint.listStacks).toBeGreaterThan(0);
    expect(stats.total).toBe(stats.byEndpoint.listStacks);
  });

  it('fetches the history of only the stack that changed', async () => {
    const { sim, statePath } = await setup();
    const app = track(buildApp(configFor(sim, statePath)));
    await app.runOnce();
    sim.control.addCompletedUpdate(someStack(sim));
    sim.resetStats();
    await app.runOnce();
    expect(sim.stats().byEndpoint.listUpdates).toBe(1);
    expect(sim.stats().byEndpoint.engineEvents).toBeGreaterThanOrEqual(1);
  });
});

describe('failures lose nothing', () => {
  it('commits nothing while the collector is down and exports everything exactly once when it is back', async () => {
    const { sim, statePath } = await setup();
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const config = configFor(sim, statePath, { traces: { exporter: 'otlp', endpoint: receiver.url, timeoutMillis: 700 } });
    const app = track(buildApp(config));
    receiver.failNext(503, 1_000_000);
    const down = await app.runOnce();
    expect(down.result).toBe('failure');
    let samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(0);
    expect(sumOf(samples, 'pulumi_exporter_errors_total', { code: 'TRACE_EXPORT_FAILED' })).toBeGreaterThan(0);
    expect(sumOf(samples, 'pulumi_exporter_span_export_failures_total')).toBeGreaterThan(0);

    receiver.failNext(503, 0);
    const up = await app.runOnce();
    expect(up.result).toBe('success');
    samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(completed(sim));
    const roots = receiver.spans().filter((s) => s.parentSpanId === '');
    expect(new Set(roots.map((s) => s.traceId)).size).toBe(completed(sim));
  });

  it('rides out 429s and 5xx from Pulumi Cloud and counts the retries', async () => {
    const { sim, statePath } = await setup();
    sim.faults.add({ kind: '429', endpoint: 'listUpdates', count: 2, retryAfterSeconds: 0 });
    sim.faults.add({ kind: '503', endpoint: 'engineEvents', count: 2 });
    const app = track(buildApp(configFor(sim, statePath)));
    expect((await app.runOnce()).result).toBe('success');
    const samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(completed(sim));
    expect(sumOf(samples, 'pulumi_exporter_api_retries_total', { reason: '429' })).toBe(2);
    expect(sumOf(samples, 'pulumi_exporter_api_retries_total', { reason: '5xx' })).toBe(2);
  });

  it('reports a malformed events page as a coded error and exports the update on the next cycle', async () => {
    const { sim, statePath } = await setup();
    sim.faults.add({ kind: 'malformed', endpoint: 'engineEvents', count: 1 });
    const app = track(buildApp(configFor(sim, statePath, { pulumi: { maxAttempts: 1 } })));
    const first = await app.runOnce();
    expect(first.result).toBe('failure');
    expect(sumOf(await scrape(app), 'pulumi_exporter_errors_total', { code: 'API_MALFORMED_RESPONSE' })).toBe(1);
    expect((await app.runOnce()).result).toBe('success');
    expect(sumOf(await scrape(app), 'pulumi_updates_total')).toBe(completed(sim));
  });
});
