import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas, type MetricDetail } from '../../../src/metrics/update-deltas.js';
import { memoryStore } from '../../helpers/memory-store.js';
import { requireTool } from '../../helpers/processes.js';
import { exerciseSelfMetrics, PROD, seedStore } from '../../unit/metrics/seed-store.js';

// Under CI a missing promtool fails this file (requireTool throws); locally it skips.
const havePromtool = requireTool('promtool');

function promtool(exposition: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const ALL_DETAIL: MetricDetail = { updateDurationByStack: true, resourceOperationsByStack: true, resourceOperationDurationByStack: true };

async function realisticExposition(detail: MetricDetail): Promise<string> {
  const store = await memoryStore();
  await seedStore(store);
  // One more update with the per-stack detail when configured.
  await store.commitUpdate({
    update: { stack: PROD, updateId: 'f00d-0009', kind: 'refresh', version: 9, result: 'succeeded', startTime: 6_000, endTime: 6_020 },
    deltas: updateMetricDeltas({
      stack: PROD,
      updateId: 'f00d-0009',
      kind: 'refresh',
      result: 'succeeded',
      startTime: 6_000,
      endTime: 6_020,
      resourceChanges: { refresh: 4 },
      operations: [{ urn: 'urn:x', op: 'refresh', resourceType: 'random:index/randomPet:RandomPet', result: 'succeeded', durationSeconds: 1 }],
      policyViolations: [],
      detail,
    }),
    exportedAtMs: 6_030_000,
  });
  const metrics = new ExporterMetrics({ store, version: '1.2.3', revision: 'abc1234' });
  exerciseSelfMetrics(metrics);
  metrics.error('STATE_ERROR');
  return (await metrics.render()).body;
}

describe.runIf(havePromtool)('promtool check metrics', () => {
  it.each([
    ['default', DEFAULT_METRIC_DETAIL],
    ['all per-stack detail', ALL_DETAIL],
  ])('accepts a realistic exposition without a remark (%s)', async (_name, detail) => {
    const body = await realisticExposition(detail);
    expect(body).toContain('pulumi_update_duration_seconds_bucket{');
    expect(body).toContain('pulumi_stack_update_duration_seconds_sum{');
    const { status, output } = promtool(body);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('accepts the exposition of an empty store (families without samples)', async () => {
    const body = (await new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' }).render()).body;
    expect(promtool(body)).toEqual({ status: 0, output: '' });
  });

  it('does report problems, so a clean result means something', () => {
    const { status, output } = promtool('# HELP pulumi_bad_count x\n# TYPE pulumi_bad_count counter\npulumi_bad_count 1\n');
    expect(status).not.toBe(0);
    expect(output).toContain('_total');
  });
});
