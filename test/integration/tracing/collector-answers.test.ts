import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthStack } from '../../../src/simulator/simulator-truth.js';
import { sumOf } from '../../helpers/exposition.js';
import { buildApp, configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';

/*
 * How the whole exporter (simulator -> sync -> OTLP sink -> SQLite) answers what a collector,
 * or a proxy in front of it, says: 413, other 4xx, and partial success.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(traces: Record<string, unknown> = {}, maxUpdateAttempts = 2): Promise<{ sim: RunningSimulator; receiver: OtlpReceiver; app: App }> {
  // Small, so each test takes a few seconds: 3 stacks of 4 updates, no fixture stack.
  const sim = await startTestSimulator({
    seed: 5,
    fixtures: false,
    scale: { orgs: 1, projectsPerOrg: 1, stacksPerProject: 3, updatesPerStack: 4, resourcesPerStack: 20 },
  });
  const receiver = await startOtlpReceiver();
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup(), () => sim.close(), () => receiver.close());
  const config = configFor(sim, `${tmp.dir}/state.db`, {
    traces: { exporter: 'otlp', endpoint: receiver.url, timeoutMillis: 2_000, ...traces },
    poll: { maxUpdateAttempts },
  });
  const app = buildApp(config);
  cleanups.push(() => app.stop());
  return { sim, receiver, app };
}

function completed(sim: RunningSimulator): number {
  return sim.truth().stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);
}

/** The oldest completed update of a generated stack that has at least two: later ones must wait behind it. */
function target(sim: RunningSimulator): { stack: TruthStack; traceId: string } {
  const stack = sim.truth().stacks.find((s) => s.updates.filter((u) => u.result !== 'in-progress').length >= 2);
  const update = stack?.updates.find((u) => u.result !== 'in-progress');
  if (stack === undefined || update === undefined) throw new Error('the simulator generated no stack with two completed updates');
  return { stack, traceId: traceIdFor(stack, update.updateId) };
}

function rootsOf(receiver: OtlpReceiver, traceId?: string): string[] {
  return receiver
    .spans()
    .filter((s) => s.parentSpanId === '' && (traceId === undefined || s.traceId === traceId))
    .map((s) => s.traceId);
}

describe('collector answers', () => {
  it('splits requests a proxy refuses as too large (413) and delivers every trace, counting no failure', async () => {
    const { sim, receiver, app } = await setup();
    const limit = 4 * 1024;
    receiver.refuseLargerThan(limit);

    expect((await app.runOnce()).result).toBe('success');

    expect(receiver.requests.some((r) => r.status === 413)).toBe(true);
    for (const r of receiver.requests.filter((x) => x.status === 200)) expect(r.body.length).toBeLessThanOrEqual(limit);
    const roots = rootsOf(receiver);
    expect(roots).toHaveLength(completed(sim));
    expect(new Set(roots).size).toBe(completed(sim));
    const samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(completed(sim));
    expect(sumOf(samples, 'pulumi_exporter_span_export_failures_total')).toBe(0);
  });

  it('keeps the backlog while a collector or proxy answers 4xx for a trace, for more cycles than maxUpdateAttempts, and loses nothing once fixed', async () => {
    const { sim, receiver, app } = await setup({}, 2);
    const { stack, traceId } = target(sim);
    receiver.failTrace(traceId, 400);

    for (let cycle = 0; cycle < 4; cycle++) await app.runOnce();

    expect(rootsOf(receiver, traceId)).toEqual([]);
    let samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_exporter_span_export_failures_total', { reason: 'http_4xx' })).toBe(4);
    // Nothing of that stack was counted: its updates wait behind the refused one.
    expect(sumOf(samples, 'pulumi_updates_total', { project: stack.project, stack: stack.stack })).toBe(0);
    expect(sumOf(samples, 'pulumi_exporter_backlog_updates')).toBeGreaterThan(0);

    receiver.forgetTrace(traceId);
    expect((await app.runOnce()).result).toBe('success');

    expect(rootsOf(receiver, traceId)).toEqual([traceId]);
    samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(completed(sim));
    expect(sumOf(samples, 'pulumi_exporter_backlog_updates')).toBe(0);
    expect(new Set(rootsOf(receiver)).size).toBe(completed(sim));
  });

  it('gives up on a trace the collector rejects in a partial success after maxUpdateAttempts cycles, and counts its update', async () => {
    const { sim, receiver, app } = await setup({}, 2);
    const { stack, traceId } = target(sim);
    receiver.rejectTrace(traceId, 'span too old');

    // Each cycle: the request carrying the stack's updates together is rejected, then the
    // same updates go one per request and only the target's is rejected again.
    await app.runOnce();
    let samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_exporter_span_export_failures_total', { reason: 'rejected' })).toBe(2);
    expect(sumOf(samples, 'pulumi_updates_total', { project: stack.project, stack: stack.stack })).toBe(0);

    await app.runOnce();

    expect(rootsOf(receiver, traceId)).toEqual([]);
    samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_exporter_span_export_failures_total', { reason: 'rejected' })).toBe(4);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(completed(sim));
    expect(sumOf(samples, 'pulumi_exporter_backlog_updates')).toBe(0);
    expect(new Set(rootsOf(receiver)).size).toBe(completed(sim) - 1);
  });
});
