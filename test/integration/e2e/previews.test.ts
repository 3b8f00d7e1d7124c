import { afterEach, describe, expect, it } from 'vitest';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { StackRef } from '../../../src/domain/stack.js';
import { isPreviewKind } from '../../../src/domain/update.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthStack, TruthUpdate } from '../../../src/simulator/simulator-truth.js';
import { sumOf } from '../../helpers/exposition.js';
import { buildApp, configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const refOf = (s: TruthStack): StackRef => ({ org: s.org, project: s.project, stack: s.stack });
const finished = (u: TruthUpdate): boolean => u.result !== 'in-progress';

/** Terminal previews of the simulator's truth, as trace ids. */
function previewTraceIds(sim: RunningSimulator): Set<string> {
  return new Set(sim.truth().stacks.flatMap((s) => s.allPreviews.filter(finished).map((p) => traceIdFor(s, p.updateId))));
}

/** Root spans received per trace id (a trace sent twice shows up with 2). */
function rootsByTrace(receiver: OtlpReceiver): Map<string, number> {
  const n = new Map<string, number>();
  for (const s of receiver.spans().filter((x) => x.parentSpanId === '')) n.set(s.traceId, (n.get(s.traceId) ?? 0) + 1);
  return n;
}

/** Generated stacks that have history (the fixture stack replays recorded updates only). */
function generated(sim: RunningSimulator): TruthStack[] {
  return sim.truth().stacks.filter((s) => s.project !== 'pulumi-samples' && s.updates.length > 0 && s.updates.every(finished));
}

describe('previews (shared pulumi-api.md 2.5, 6.7)', () => {
  it('are off by default: no previews call, no preview counted', async () => {
    const sim = await startTestSimulator();
    const tmp = tempDir('pue-previews-off-');
    cleanups.push(() => tmp.cleanup(), () => sim.close());
    const app = buildApp(configFor(sim, `${tmp.dir}/state.db`));
    cleanups.push(() => app.stop());
    expect((await app.runOnce()).result).toBe('success');
    const stack = generated(sim)[0]!;
    sim.control.addCompletedPreview(refOf(stack));
    sim.resetStats();
    expect((await app.runOnce()).result).toBe('success');
    const { byEndpoint } = sim.stats();
    // A preview does not move lastUpdate: the second cycle costs the stack listing alone.
    expect(byEndpoint).toMatchObject({ latestPreviews: 0, versionPreviews: 0, listUpdates: 0, engineEvents: 0 });
    expect(byEndpoint.listStacks).toBeGreaterThan(0);
    expect(sumOf(await scrape(app), 'pulumi_updates_total', { kind: 'preview' })).toBe(0);
  });

  it('exports each preview once as a trace and counts it with kind="preview", across cycles, a superseded version and a restart', async () => {
    const sim = await startTestSimulator();
    const receiver = await startOtlpReceiver();
    const tmp = tempDir('pue-previews-');
    cleanups.push(() => tmp.cleanup(), () => sim.close(), () => receiver.close());
    const statePath = `${tmp.dir}/state.db`;
    const config = configFor(sim, statePath, { traces: { exporter: 'otlp', endpoint: receiver.url }, previews: { enabled: true } });
    const truth0 = sim.truth();
    const historyUpdates = truth0.stacks.reduce((n, s) => n + s.updates.filter(finished).length, 0);
    const initial = previewTraceIds(sim);
    expect(initial.size).toBeGreaterThan(5);
    // Every preview kind the simulator serves, the older plain `preview` included.
    expect(new Set(truth0.stacks.flatMap((s) => s.allPreviews.map((p) => p.kind)))).toEqual(new Set(['Pupdate', 'Prefresh', 'Pdestroy', 'preview']));

    let app = buildApp(config);
    cleanups.push(() => app.stop());
    expect((await app.runOnce()).result).toBe('success');
    let roots = rootsByTrace(receiver);
    for (const id of initial) expect(roots.get(id)).toBe(1);
    let samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total', { kind: 'preview' })).toBe(initial.size);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(historyUpdates + initial.size);
    expect(sumOf(samples, 'pulumi_exporter_updates_exported_total', { kind: 'preview' })).toBe(initial.size);
    // No other kind label for a preview (Pupdate, Prefresh, ... are all kind="preview").
    expect(samples.filter((x) => x.name === 'pulumi_updates_total' && isPreviewKind(x.labels['kind'] ?? '') && x.labels['kind'] !== 'preview')).toEqual([]);
    expect(sumOf(samples, 'pulumi_update_failures_total', { kind: 'preview' })).toBe(
      truth0.stacks.reduce((n, s) => n + s.allPreviews.filter((p) => p.result === 'failed').length, 0),
    );

    // The root span of a preview: its kind as reported, a link to the preview's console page.
    const previewRoots = receiver.spans().filter((x) => x.parentSpanId === '' && initial.has(x.traceId));
    for (const root of previewRoots) {
      expect(isPreviewKind(String(root.attributes['pulumi.update.kind']))).toBe(true);
      expect(String(root.attributes['cicd.pipeline.run.url.full'])).toMatch(/\/previews\/[0-9a-f-]+$/);
    }

    // A preview never moves the last successful update of a stack.
    for (const s of truth0.stacks) {
      const ends = s.updates.filter((u) => u.result === 'succeeded').map((u) => u.endTime ?? 0);
      if (ends.length === 0) continue;
      expect(sumOf(samples, 'pulumi_stack_last_successful_update_timestamp_seconds', refOf(s) as unknown as Record<string, string>)).toBe(Math.max(...ends));
    }

    // Between cycles: on stack A a preview, then an update that supersedes its version, then
    // a preview of the new version; on stack B a preview that is still running.
    const [a, b] = generated(sim);
    if (!a || !b) throw new Error('the simulator has too few generated stacks');
    const superseded = sim.control.addCompletedPreview(refOf(a), { result: 'failed' });
    sim.control.advanceClock(60);
    const update = sim.control.addCompletedUpdate(refOf(a));
    sim.control.advanceClock(60);
    const latest = sim.control.addCompletedPreview(refOf(a), { kind: 'refresh' });
    const running = sim.control.startPreview(refOf(b));
    sim.resetStats();
    expect((await app.runOnce()).result).toBe('success');
    const watched = sim.truth().stacks.length;
    // Cost with previews on: one latest-previews call per watched stack, one more for the superseded version.
    expect(sim.stats().byEndpoint).toMatchObject({ latestPreviews: watched, versionPreviews: 1, listUpdates: 1 });
    roots = rootsByTrace(receiver);
    for (const id of [superseded, update, latest]) expect(roots.get(traceIdFor(a, id))).toBe(1);
    expect(roots.get(traceIdFor(b, running))).toBeUndefined();
    samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total', { kind: 'preview' })).toBe(initial.size + 2);
    expect(sumOf(samples, 'pulumi_updates_total', { ...(refOf(a) as unknown as Record<string, string>), kind: 'preview', result: 'failed' })).toBeGreaterThanOrEqual(1);

    // The running preview is exported once it ends, after a restart on the same state.
    await app.stop();
    sim.control.completeUpdate(refOf(b), running);
    app = buildApp(config);
    cleanups.push(() => app.stop());
    expect((await app.runOnce()).result).toBe('success');
    expect((await app.runOnce()).result).toBe('success');
    roots = rootsByTrace(receiver);
    const all = previewTraceIds(sim);
    expect(all.size).toBe(initial.size + 3);
    for (const id of all) expect(roots.get(id)).toBe(1);
    samples = await scrape(app);
    expect(sumOf(samples, 'pulumi_updates_total', { kind: 'preview' })).toBe(all.size);
    expect(sumOf(samples, 'pulumi_updates_total')).toBe(historyUpdates + 1 + all.size);
    // Nothing was sent twice, updates included.
    expect([...roots.values()].every((n) => n === 1)).toBe(true);
  });
});
