import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { SimulatorTruth } from '../../../src/simulator/simulator-truth.js';
import { dataSamples, sumOf, type Sample } from '../../helpers/exposition.js';
import { buildApp, configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';

/**
 * Metric golden test: for a fixed simulator seed, the exposition's pulumi_* values equal
 * the simulator's own ground truth (computed from its generation plan, not by exporter code).
 */
describe('metrics against the simulator ground truth', () => {
  let sim: RunningSimulator;
  let app: App;
  let truth: SimulatorTruth;
  let samples: Sample[];
  const tmp = tempDir();

  beforeAll(async () => {
    sim = await startTestSimulator({ seed: 11 });
    truth = sim.truth();
    app = buildApp(configFor(sim, `${tmp.dir}/state.db`));
    const result = await app.runOnce();
    expect(result.result).toBe('success');
    samples = await scrape(app);
  });

  afterAll(async () => {
    await app.stop();
    await sim.close();
    tmp.cleanup();
  });

  const terminal = (t: SimulatorTruth) =>
    t.stacks.flatMap((s) => s.updates.filter((u) => u.result !== 'in-progress').map((u) => ({ s, u })));

  it('counts every completed update once by org, project, stack, kind and result', () => {
    const expected = new Map<string, number>();
    for (const { s, u } of terminal(truth)) {
      const key = JSON.stringify({ org: s.org, project: s.project, stack: s.stack, kind: u.kind, result: u.result });
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    expect(expected.size).toBeGreaterThan(5);
    const actual = new Map<string, number>();
    for (const x of samples.filter((x) => x.name === 'pulumi_updates_total')) {
      const { org, project, stack, kind, result } = x.labels;
      actual.set(JSON.stringify({ org, project, stack, kind, result }), x.value);
    }
    expect(actual).toEqual(expected);
    const results = new Set(terminal(truth).map(({ u }) => u.result));
    expect(results).toEqual(new Set(['succeeded', 'failed', 'cancelled']));
  });

  it('counts failed updates by kind, cancelled ones not included', () => {
    for (const s of truth.stacks) {
      const failedByKind = new Map<string, number>();
      for (const u of s.updates.filter((x) => x.result === 'failed')) failedByKind.set(u.kind, (failedByKind.get(u.kind) ?? 0) + 1);
      for (const [kind, n] of failedByKind) {
        expect(sumOf(samples, 'pulumi_update_failures_total', { org: s.org, project: s.project, stack: s.stack, kind })).toBe(n);
      }
    }
  });

  it('sums resource changes by operation', () => {
    for (const s of truth.stacks) {
      const byOp = new Map<string, number>();
      for (const u of s.updates.filter((x) => x.result !== 'in-progress')) {
        for (const [op, n] of Object.entries(u.resourceChanges)) byOp.set(op, (byOp.get(op) ?? 0) + n);
      }
      for (const [op, n] of byOp) {
        expect(sumOf(samples, 'pulumi_update_resource_changes_total', { org: s.org, project: s.project, stack: s.stack, operation: op })).toBe(n);
      }
    }
  });

  it('counts resource operations per project by operation, type and result', () => {
    let checked = 0;
    const projects = [...new Set(truth.stacks.map((s) => JSON.stringify([s.org, s.project])))].map((k) => JSON.parse(k) as [string, string]);
    for (const [org, project] of projects) {
      const stacks = truth.stacks.filter((s) => s.org === org && s.project === project);
      const updates = stacks.flatMap((s) => s.updates.filter((x) => x.result !== 'in-progress'));
      if (updates.some((u) => u.resourceOperations === null)) continue;
      const expected = new Map<string, number>();
      for (const u of updates) {
        for (const op of u.resourceOperations ?? []) {
          const key = JSON.stringify([op.op, op.type, op.result]);
          expected.set(key, (expected.get(key) ?? 0) + 1);
        }
      }
      const actual = new Map<string, number>();
      for (const x of samples.filter((y) => y.name === 'pulumi_resource_operations_total' && y.labels['org'] === org && y.labels['project'] === project)) {
        // No stack label by default: one series per project, operation, type and result.
        expect(x.labels['stack']).toBeUndefined();
        actual.set(JSON.stringify([x.labels['operation'], x.labels['resource_type'], x.labels['result']]), x.value);
      }
      expect(actual).toEqual(expected);
      checked += 1;
    }
    expect(checked).toBeGreaterThan(3);
  });

  it('counts policy violations by pack, policy and enforcement level', () => {
    const expected = new Map<string, number>();
    for (const { s, u } of terminal(truth)) {
      for (const v of u.policyViolations) {
        const key = JSON.stringify([s.org, s.project, s.stack, v.policyPack, v.policy, v.enforcementLevel]);
        expected.set(key, (expected.get(key) ?? 0) + 1);
      }
    }
    const actual = new Map<string, number>();
    for (const x of samples.filter((y) => y.name === 'pulumi_policy_violations_total')) {
      const l = x.labels;
      actual.set(JSON.stringify([l['org'], l['project'], l['stack'], l['policy_pack'], l['policy'], l['enforcement_level']]), x.value);
    }
    expect(actual).toEqual(expected);
  });

  it('observes one update duration per completed update', () => {
    expect(sumOf(samples, 'pulumi_update_duration_seconds_count')).toBe(terminal(truth).length);
    const expectedSum = terminal(truth).reduce((n, { u }) => n + ((u.endTime ?? u.startTime) - u.startTime), 0);
    expect(sumOf(samples, 'pulumi_update_duration_seconds_sum')).toBeCloseTo(expectedSum, 6);
  });

  it('reports each stack resource count and the last update of each kind', () => {
    for (const s of truth.stacks) {
      const labels = { org: s.org, project: s.project, stack: s.stack };
      expect(sumOf(samples, 'pulumi_stack_resources', labels)).toBe(s.resourceCount);
      const done = s.updates.filter((u) => u.result !== 'in-progress');
      for (const kind of new Set(done.map((u) => u.kind))) {
        const newest = done.filter((u) => u.kind === kind).reduce((a, b) => ((b.endTime ?? 0) >= (a.endTime ?? 0) ? b : a));
        expect(sumOf(samples, 'pulumi_stack_last_update_timestamp_seconds', { ...labels, kind })).toBe(newest.endTime);
        expect(sumOf(samples, 'pulumi_stack_last_update_success', { ...labels, kind })).toBe(newest.result === 'succeeded' ? 1 : 0);
      }
    }
  });

  it('exports nothing but bounded labels', () => {
    for (const x of dataSamples(samples)) {
      for (const v of Object.values(x.labels)) {
        expect(v).not.toMatch(/^urn:pulumi:/);
        expect(v).not.toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
        expect(v).not.toContain('@');
      }
    }
  });
});
