import { AggregationTemporality, DataPointType, type HistogramMetricData, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { API_REQUEST_DURATION_BUCKETS } from '../../../src/metrics/definitions.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { selfMetricData, storeMetricData, type PromFamily } from '../../../src/metrics/otlp-metric-data.js';
import { memoryStore } from '../../helpers/memory-store.js';

const TIMES = { storeStartMs: 1_000, selfStartMs: 2_000, nowMs: 3_000 };
const prod = { org: 'acme', project: 'web', stack: 'prod' };

const byName = (data: readonly MetricData[], name: string): MetricData | undefined => data.find((m) => m.descriptor.name === name);

describe('storeMetricData', () => {
  it('maps a stored summary to a histogram without bounds: one bucket holding the count, and the sum', () => {
    const data = storeMetricData(
      { histograms: [{ name: 'pulumi_stack_update_duration_seconds', labels: { ...prod, kind: 'update', result: 'failed' }, buckets: [], bucketCounts: [3], sum: 42, count: 3 }] },
      TIMES,
    );
    const summary = byName(data, 'pulumi_stack_update_duration_seconds') as HistogramMetricData;
    expect(summary.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(summary.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
    expect(summary.descriptor.unit).toBe('s');
    expect(summary.dataPoints).toEqual([
      {
        startTime: [1, 0],
        endTime: [3, 0],
        attributes: { ...prod, kind: 'update', result: 'failed' },
        value: { buckets: { boundaries: [], counts: [3] }, sum: 42, count: 3 },
      },
    ]);
  });

  it('leaves out rows of metrics that are not defined, and families without points', () => {
    const data = storeMetricData({ counters: [{ name: 'pulumi_retired_total', labels: {}, value: 4 }] }, TIMES);
    expect(data).toEqual([]);
  });
});

describe('selfMetricData', () => {
  it('turns prom-client cumulative bucket lines into per-bucket counts with the +Inf bucket last', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: '1.2.3', revision: 'abc' });
    const durations = [0.01, 0.02, 0.3, 0.3, 7, 99];
    for (const d of durations) metrics.request('listStacks', '200', d);
    const data = selfMetricData((await metrics.registry.getMetricsAsJSON()) as unknown as PromFamily[], TIMES);

    const histogram = byName(data, 'pulumi_exporter_api_request_duration_seconds') as HistogramMetricData;
    expect(histogram.dataPoints).toHaveLength(1);
    const [point] = histogram.dataPoints;
    expect(point?.attributes).toEqual({ endpoint: 'listStacks' });
    expect(point?.startTime).toEqual([2, 0]);
    expect(point?.value.buckets.boundaries).toEqual([...API_REQUEST_DURATION_BUCKETS]);
    const expected = [...API_REQUEST_DURATION_BUCKETS, Infinity].map(
      (bound, i, all) => durations.filter((d) => d <= bound && (i === 0 || d > (all[i - 1] as number))).length,
    );
    expect(point?.value.buckets.counts).toEqual(expected);
    expect(point?.value.count).toBe(durations.length);
    expect(point?.value.sum).toBeCloseTo(durations.reduce((a, b) => a + b, 0), 9);

    const requests = byName(data, 'pulumi_exporter_api_requests_total');
    expect(requests?.dataPointType).toBe(DataPointType.SUM);
    expect(requests?.dataPoints).toEqual([{ startTime: [2, 0], endTime: [3, 0], attributes: { endpoint: 'listStacks', code: '200' }, value: 6 }]);
    const build = byName(data, 'pulumi_exporter_build_info');
    expect(build?.dataPointType).toBe(DataPointType.GAUGE);
    expect(build?.dataPoints[0]?.attributes).toMatchObject({ version: '1.2.3', revision: 'abc' });
  });
});
