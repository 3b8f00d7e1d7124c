import { describe, expect, it } from 'vitest';
import type { MetricDeltas } from '../../../src/domain/metric-delta.js';
import type { ResourceOperation } from '../../../src/domain/trace.js';
import type { TerminalResult } from '../../../src/domain/update.js';
import { RESOURCE_OPERATION_DURATION_BUCKETS, UPDATE_DURATION_BUCKETS } from '../../../src/metrics/definitions.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import { DEFAULT_METRIC_DETAIL, kindLabel, updateMetricDeltas, type UpdateDeltaInput } from '../../../src/metrics/update-deltas.js';

const stack = { org: 'acme', project: 'web', stack: 'prod' };
const base = { org: 'acme', project: 'web', stack: 'prod' };
const project = { org: 'acme', project: 'web' };

function input(overrides: Partial<UpdateDeltaInput> = {}): UpdateDeltaInput {
  return {
    stack,
    updateId: 'u-1',
    kind: 'update',
    result: 'succeeded',
    startTime: 1_700_000_000,
    endTime: 1_700_000_042,
    resourceChanges: {},
    operations: [],
    policyViolations: [],
    detail: DEFAULT_METRIC_DETAIL,
    ...overrides,
  };
}

function counter(deltas: MetricDeltas, name: string): { labels: Record<string, string>; value: number }[] {
  return deltas.counters.filter((c) => c.name === name).map((c) => ({ labels: { ...c.labels }, value: c.value }));
}

function observations(deltas: MetricDeltas, name: string): { labels: Record<string, string>; value: number }[] {
  return deltas.histograms.filter((h) => h.name === name).map((h) => ({ labels: { ...h.labels }, value: h.value }));
}

const op = (o: Partial<ResourceOperation>): ResourceOperation => ({
  urn: 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::site',
  op: 'create',
  resourceType: 'aws:s3/bucket:Bucket',
  result: 'succeeded',
  durationSeconds: 3,
  ...o,
});

describe('updateMetricDeltas', () => {
  it('gives the steps of every update the labels of their own stack and detail setting, one labels object per series', () => {
    const steps = [op({}), op({ urn: 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::logs', durationSeconds: 5 })];
    const byStack = { ...DEFAULT_METRIC_DETAIL, resourceOperationsByStack: true, resourceOperationDurationByStack: true };
    const other = { org: 'acme', project: 'api', stack: 'prod' };
    const runs = [
      updateMetricDeltas(input({ operations: steps })),
      updateMetricDeltas(input({ operations: steps, detail: byStack })),
      updateMetricDeltas(input({ operations: steps, stack: other })),
      updateMetricDeltas(input({ operations: steps, updateId: 'u-2' })),
    ];
    const step = { operation: 'create', resource_type: 'aws:s3/bucket:Bucket' };
    expect(counter(runs[0]!, 'pulumi_resource_operations_total')).toEqual([{ labels: { ...project, ...step, result: 'succeeded' }, value: 2 }]);
    expect(counter(runs[1]!, 'pulumi_resource_operations_total')).toEqual([{ labels: { ...base, ...step, result: 'succeeded' }, value: 2 }]);
    expect(counter(runs[2]!, 'pulumi_resource_operations_total')).toEqual([
      { labels: { org: 'acme', project: 'api', ...step, result: 'succeeded' }, value: 2 },
    ]);
    expect(observations(runs[0]!, 'pulumi_resource_operation_duration_seconds').map((o) => o.labels)).toEqual([{ org: 'acme', ...step }, { org: 'acme', ...step }]);
    expect(observations(runs[1]!, 'pulumi_resource_operation_duration_seconds').map((o) => o.labels)).toEqual([{ ...base, ...step }, { ...base, ...step }]);
    // Both steps, and the next update of the stack, share one labels object for the series.
    const durations = (d: MetricDeltas) => d.histograms.filter((h) => h.name === 'pulumi_resource_operation_duration_seconds');
    expect(durations(runs[0]!)[1]!.labels).toBe(durations(runs[0]!)[0]!.labels);
    expect(durations(runs[3]!)[0]!.labels).toBe(durations(runs[0]!)[0]!.labels);
  });

  it.each<[TerminalResult, number]>([
    ['succeeded', 0],
    ['failed', 1],
    ['cancelled', 0],
  ])('counts a %s update once and as %i failure', (result, failures) => {
    const deltas = updateMetricDeltas(input({ result }));
    expect(counter(deltas, 'pulumi_updates_total')).toEqual([{ labels: { ...base, kind: 'update', result }, value: 1 }]);
    // Always present (0 when not failed), so the series exists before its first failure.
    expect(counter(deltas, 'pulumi_update_failures_total')).toEqual([{ labels: { ...base, kind: 'update' }, value: failures }]);
  });

  it.each([
    ['a normal update', 1_000, 1_042, 42],
    ['a four-hour update', 0, 14_400, 14_400],
    ['an end time before the start time (clock skew)', 1_000, 990, 0],
  ])('observes the update duration for %s per project, and per stack in the summary', (_name, startTime, endTime, expected) => {
    const deltas = updateMetricDeltas(input({ kind: 'refresh', result: 'failed', startTime, endTime }));
    expect(observations(deltas, 'pulumi_update_duration_seconds')).toEqual([
      { labels: { ...project, kind: 'refresh', result: 'failed' }, value: expected },
    ]);
    expect(deltas.histograms[0]?.buckets).toEqual(UPDATE_DURATION_BUCKETS);
    expect(observations(deltas, 'pulumi_stack_update_duration_seconds')).toEqual([
      { labels: { ...base, kind: 'refresh', result: 'failed' }, value: expected },
    ]);
    // A summary: sum and count only, so no finite buckets.
    expect(deltas.histograms[1]?.buckets).toEqual([]);
  });

  it('attaches the trace id of the update and its end time as the duration exemplar', () => {
    const deltas = updateMetricDeltas(input({ updateId: 'abc-42' }));
    const observed = deltas.histograms.find((h) => h.name === 'pulumi_update_duration_seconds');
    expect(observed?.exemplar).toEqual({ traceId: traceIdFor(stack, 'abc-42'), timestamp: 1_700_000_042 });
    expect(observed?.exemplar?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('adds the stack label to the update duration histogram when updateDurationByStack is set', () => {
    const deltas = updateMetricDeltas(input({ detail: { ...DEFAULT_METRIC_DETAIL, updateDurationByStack: true } }));
    expect(observations(deltas, 'pulumi_update_duration_seconds')).toEqual([
      { labels: { ...base, kind: 'update', result: 'succeeded' }, value: 42 },
    ]);
  });

  it('adds only the non-zero resource changes, per operation', () => {
    const deltas = updateMetricDeltas(input({ resourceChanges: { create: 3, same: 0, update: 1, delete: -1 } }));
    expect(counter(deltas, 'pulumi_update_resource_changes_total')).toEqual([
      { labels: { ...base, kind: 'update', operation: 'create' }, value: 3 },
      { labels: { ...base, kind: 'update', operation: 'update' }, value: 1 },
    ]);
  });

  it('counts resource operations per project, operation, type and result, summing repeats', () => {
    const deltas = updateMetricDeltas(
      input({
        operations: [
          op({}),
          op({ urn: 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::logs' }),
          op({ op: 'update', resourceType: 'aws:iam/role:Role', result: 'failed', durationSeconds: 7 }),
          op({ op: 'delete', result: 'interrupted', durationSeconds: 0 }),
        ],
      }),
    );
    expect(counter(deltas, 'pulumi_resource_operations_total')).toEqual([
      { labels: { ...project, operation: 'create', resource_type: 'aws:s3/bucket:Bucket', result: 'succeeded' }, value: 2 },
      { labels: { ...project, operation: 'update', resource_type: 'aws:iam/role:Role', result: 'failed' }, value: 1 },
      { labels: { ...project, operation: 'delete', resource_type: 'aws:s3/bucket:Bucket', result: 'interrupted' }, value: 1 },
    ]);
  });

  it('adds the stack label to resource operation counts when resourceOperationsByStack is set', () => {
    const deltas = updateMetricDeltas(input({ operations: [op({})], detail: { ...DEFAULT_METRIC_DETAIL, resourceOperationsByStack: true } }));
    expect(counter(deltas, 'pulumi_resource_operations_total')).toEqual([
      { labels: { ...base, operation: 'create', resource_type: 'aws:s3/bucket:Bucket', result: 'succeeded' }, value: 1 },
    ]);
  });

  it('observes durations of finished resource steps only, per organization by default', () => {
    const deltas = updateMetricDeltas(
      input({
        operations: [
          op({ durationSeconds: 3 }),
          op({ op: 'update', resourceType: 'aws:iam/role:Role', result: 'failed', durationSeconds: 7 }),
          op({ op: 'delete', result: 'interrupted', durationSeconds: 0 }),
        ],
      }),
    );
    expect(observations(deltas, 'pulumi_resource_operation_duration_seconds')).toEqual([
      { labels: { org: 'acme', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' }, value: 3 },
      { labels: { org: 'acme', operation: 'update', resource_type: 'aws:iam/role:Role' }, value: 7 },
    ]);
    const buckets = deltas.histograms.filter((h) => h.name === 'pulumi_resource_operation_duration_seconds').map((h) => h.buckets);
    expect(buckets).toEqual([RESOURCE_OPERATION_DURATION_BUCKETS, RESOURCE_OPERATION_DURATION_BUCKETS]);
  });

  it('adds the project and stack labels to resource step durations when resourceOperationDurationByStack is set', () => {
    const deltas = updateMetricDeltas(
      input({ operations: [op({})], detail: { ...DEFAULT_METRIC_DETAIL, resourceOperationDurationByStack: true } }),
    );
    expect(observations(deltas, 'pulumi_resource_operation_duration_seconds')).toEqual([
      { labels: { ...base, operation: 'create', resource_type: 'aws:s3/bucket:Bucket' }, value: 3 },
    ]);
  });

  it('counts policy violations per pack, policy and enforcement level', () => {
    const v = { policyPack: 'aws-guard', policy: 's3-no-public-read', enforcementLevel: 'mandatory' };
    const deltas = updateMetricDeltas(
      input({ policyViolations: [v, v, { ...v, policy: 'ec2-instance-tags', enforcementLevel: 'advisory' }] }),
    );
    expect(counter(deltas, 'pulumi_policy_violations_total')).toEqual([
      { labels: { ...base, policy_pack: 'aws-guard', policy: 's3-no-public-read', enforcement_level: 'mandatory' }, value: 2 },
      { labels: { ...base, policy_pack: 'aws-guard', policy: 'ec2-instance-tags', enforcement_level: 'advisory' }, value: 1 },
    ]);
  });

  it('never puts a URN or an update-specific value into a label', () => {
    const deltas = updateMetricDeltas(
      input({ operations: [op({}), op({ result: 'failed' })], resourceChanges: { create: 1 } }),
    );
    const values = [...deltas.counters, ...deltas.histograms].flatMap((d) => Object.values(d.labels));
    expect(values.some((v) => v.startsWith('urn:'))).toBe(false);
  });

  it.each(['Pupdate', 'Prefresh', 'Pdestroy', 'preview'])('counts a %s preview with kind="preview" into update counters, durations and changes only', (kind) => {
    const v = { policyPack: 'aws-guard', policy: 's3-no-public-read', enforcementLevel: 'mandatory' };
    const deltas = updateMetricDeltas(
      input({ kind, result: 'failed', resourceChanges: { update: 2 }, operations: [op({}), op({ result: 'failed' })], policyViolations: [v] }),
    );
    expect(counter(deltas, 'pulumi_updates_total')).toEqual([{ labels: { ...base, kind: 'preview', result: 'failed' }, value: 1 }]);
    expect(counter(deltas, 'pulumi_update_failures_total')).toEqual([{ labels: { ...base, kind: 'preview' }, value: 1 }]);
    expect(counter(deltas, 'pulumi_update_resource_changes_total')).toEqual([{ labels: { ...base, kind: 'preview', operation: 'update' }, value: 2 }]);
    expect(observations(deltas, 'pulumi_update_duration_seconds')).toEqual([{ labels: { ...project, kind: 'preview', result: 'failed' }, value: 42 }]);
    expect(observations(deltas, 'pulumi_stack_update_duration_seconds')).toEqual([{ labels: { ...base, kind: 'preview', result: 'failed' }, value: 42 }]);
    // Planned steps were never run, and these families have no kind label to tell them apart.
    expect(counter(deltas, 'pulumi_resource_operations_total')).toEqual([]);
    expect(observations(deltas, 'pulumi_resource_operation_duration_seconds')).toEqual([]);
    expect(counter(deltas, 'pulumi_policy_violations_total')).toEqual([]);
  });

  it('names every preview kind "preview" and keeps other kinds as reported', () => {
    expect(['Pupdate', 'Prefresh', 'Pdestroy', 'Pimport', 'Prename', 'preview'].map(kindLabel)).toEqual(Array(6).fill('preview'));
    expect(['update', 'refresh', 'destroy', 'import', 'rename'].map(kindLabel)).toEqual(['update', 'refresh', 'destroy', 'import', 'rename']);
  });

  it('produces only the update counters and durations for an update without events', () => {
    const deltas = updateMetricDeltas(input({ result: 'failed' }));
    expect(deltas.counters.map((c) => c.name).sort()).toEqual(['pulumi_update_failures_total', 'pulumi_updates_total']);
    expect(deltas.histograms.map((h) => h.name)).toEqual(['pulumi_update_duration_seconds', 'pulumi_stack_update_duration_seconds']);
  });
});
