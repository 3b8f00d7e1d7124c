import { describe, expect, it } from 'vitest';
import { METRIC_DEFINITIONS } from '../../../src/metrics/definitions.js';
import { storeSamples } from '../../../src/metrics/store-samples.js';
import type { StackRecord } from '../../../src/state/state-store.js';

const prod = { org: 'acme', project: 'web', stack: 'prod' };
const gone = { org: 'acme', project: 'web', stack: 'gone' };
const listed: StackRecord[] = [{ ...prod, resourceCount: 5, cursorVersion: 1, firstSeenMs: 0 }];

describe('storeSamples', () => {
  it('has an entry, possibly empty, for every store-backed and stack-state metric and none for self-metrics', () => {
    const out = storeSamples({});
    const expected = METRIC_DEFINITIONS.filter((d) => d.source !== 'process').map((d) => d.name);
    expect([...out.keys()].sort()).toEqual(expected.sort());
    expect([...out.values()].every((s) => s.length === 0)).toBe(true);
  });

  it('drops facts of stacks that are no longer listed even when the store still returns them', () => {
    const out = storeSamples({
      stacks: listed,
      lastUpdates: [
        { stack: prod, kind: 'update', result: 'succeeded', endTime: 10 },
        { stack: gone, kind: 'update', result: 'failed', endTime: 20 },
      ],
      lastSuccesses: [{ stack: gone, endTime: 5 }],
      inProgress: [{ stack: gone, updateId: 'x', kind: 'refresh', version: 3, startTime: 30 }],
    });
    const all = [...out.values()].flat();
    expect(all.some((s) => s.labels['stack'] === 'gone')).toBe(false);
    expect(out.get('pulumi_stack_last_update_success')).toEqual([
      { labels: { ...prod, kind: 'update' }, value: 1 },
    ]);
    expect(out.get('pulumi_stack_update_in_progress')).toEqual([{ labels: { ...prod, kind: 'update' }, value: 0 }]);
  });

  it('leaves out every stack gauge when the stack list could not be read', () => {
    const out = storeSamples({
      lastUpdates: [{ stack: prod, kind: 'update', result: 'succeeded', endTime: 10 }],
      inProgress: [{ stack: prod, updateId: 'x', kind: 'update', version: 3, startTime: 30 }],
    });
    expect([...out.values()].flat()).toEqual([]);
  });

  it('omits pulumi_stack_resources for a stack whose resource count is unknown', () => {
    const out = storeSamples({ stacks: [{ ...prod, cursorVersion: 0, firstSeenMs: 0 }] });
    expect(out.get('pulumi_stack_resources')).toEqual([]);
  });

  it('orders labels as the conventions list them, opt-in stack labels included, and puts le last on buckets', () => {
    const out = storeSamples({
      histograms: [
        {
          name: 'pulumi_resource_operation_duration_seconds',
          // As stored: keys sorted alphabetically; project and stack present because resourceOperationDurationByStack was on.
          labels: { operation: 'create', org: 'acme', project: 'web', resource_type: 'random:index/randomPet:RandomPet', stack: 'prod' },
          buckets: [1, 2],
          bucketCounts: [0, 2, 1],
          sum: 7.5,
          count: 3,
        },
      ],
    });
    const lines = out.get('pulumi_resource_operation_duration_seconds') ?? [];
    expect(lines.map((s) => [s.metricName, Object.keys(s.labels).join(','), s.value])).toEqual([
      ['pulumi_resource_operation_duration_seconds_bucket', 'org,project,stack,operation,resource_type', 0],
      ['pulumi_resource_operation_duration_seconds_bucket', 'org,project,stack,operation,resource_type', 2],
      ['pulumi_resource_operation_duration_seconds_bucket', 'org,project,stack,operation,resource_type', 3],
      ['pulumi_resource_operation_duration_seconds_sum', 'org,project,stack,operation,resource_type', 7.5],
      ['pulumi_resource_operation_duration_seconds_count', 'org,project,stack,operation,resource_type', 3],
    ]);
    // The renderer writes le after the series' labels.
    expect(lines.map((s) => s.le)).toEqual(['1', '2', '+Inf', undefined, undefined]);
  });

  it('ignores a stored row whose name belongs to a metric of another type', () => {
    const out = storeSamples({
      counters: [{ name: 'pulumi_update_duration_seconds', labels: prod, value: 1 }],
      histograms: [{ name: 'pulumi_updates_total', labels: prod, buckets: [], bucketCounts: [1], sum: 1, count: 1 }],
    });
    expect([...out.values()].flat()).toEqual([]);
  });
});
