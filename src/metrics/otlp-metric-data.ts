import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type GaugeMetricData,
  type HistogramMetricData,
  type MetricData,
  type MetricDescriptor,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import type { Labels } from '../domain/metric-delta.js';
import type { CounterRow, HistogramRow } from '../state/state-store.js';
import type { MetricDefinition } from './definitions.js';
import { METRIC_DEFINITIONS } from './definitions.js';
import type { StoreSnapshot } from './store-samples.js';
import { storeSamples } from './store-samples.js';

/*
 * The exporter's metrics as OpenTelemetry metric data, for the OTLP push. One to one with the
 * Prometheus exposition (docs/metrics.md, "OTLP push"): the same names (suffixes included),
 * label names as attribute keys, cumulative temporality.
 *
 * - counter   -> monotonic cumulative Sum
 * - gauge     -> Gauge
 * - histogram -> cumulative Histogram: the same finite bounds, per-bucket (not cumulative)
 *                counts with the +Inf bucket last, sum and count
 * - summary   -> cumulative Histogram without bounds: one bucket holding the count, and the sum
 */

const DEFINITIONS = new Map(METRIC_DEFINITIONS.map((d) => [d.name, d]));

/** Start and end of every point of one collection. */
export interface CollectionTimes {
  /** Unix ms since which store-backed counters and histograms accumulate (StateStore.readMetricsStartMs). */
  readonly storeStartMs: number;
  /** Unix ms since which this process's self-metrics accumulate (their creation). */
  readonly selfStartMs: number;
  /** Unix ms of the collection. */
  readonly nowMs: number;
}

/** The store-backed and stack-state pulumi_* metrics of one store snapshot; families without points are left out. */
export function storeMetricData(snapshot: StoreSnapshot, times: CollectionTimes): MetricData[] {
  const start = millisToHrTime(times.storeStartMs);
  const now = millisToHrTime(times.nowMs);
  const out: MetricData[] = [];
  const counters = groupByName(snapshot.counters ?? []);
  const histograms = groupByName(snapshot.histograms ?? []);
  // Gauges come from the same code as /metrics, which decides which stacks still show.
  const gaugeSamples = storeSamples({ ...snapshot, counters: [], histograms: [] });
  for (const def of METRIC_DEFINITIONS) {
    if (def.source === 'process') continue;
    if (def.type === 'counter') {
      const points = (counters.get(def.name) ?? []).map((row) => point(start, now, row.labels, row.value));
      if (points.length > 0) out.push(sum(def, points));
    } else if (def.type === 'histogram' || def.type === 'summary') {
      // A summary is stored as a histogram without finite buckets (only sum and count).
      const points = (histograms.get(def.name) ?? []).map((row) =>
          point(start, now, row.labels, {
            buckets: { boundaries: [...row.buckets], counts: [...row.bucketCounts] },
            sum: row.sum,
            count: row.count,
          }),
        );
      if (points.length > 0) out.push(histogram(def, points));
    } else {
      const points = (gaugeSamples.get(def.name) ?? []).map((s) => point(now, now, s.labels, s.value));
      if (points.length > 0) out.push(gauge(def, points));
    }
  }
  return out;
}

/** One prom-client family as getMetricsAsJSON() returns it. */
export interface PromFamily {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Partial<Record<string, string | number>>>;
    readonly metricName?: string;
  }[];
}

/** pulumi_exporter_* self-metrics, from the prom-client registry that /metrics renders too. */
export function selfMetricData(families: readonly PromFamily[], times: CollectionTimes): MetricData[] {
  const start = millisToHrTime(times.selfStartMs);
  const now = millisToHrTime(times.nowMs);
  const out: MetricData[] = [];
  for (const family of families) {
    const def = DEFINITIONS.get(family.name);
    if (def?.source !== 'process' || family.values.length === 0) continue;
    if (def.type === 'counter') out.push(sum(def, family.values.map((v) => point(start, now, stringLabels(v.labels), v.value))));
    else if (def.type === 'gauge') out.push(gauge(def, family.values.map((v) => point(now, now, stringLabels(v.labels), v.value))));
    else if (def.type === 'histogram') out.push(histogram(def, promHistogramPoints(def, family, start, now)));
  }
  return out;
}

/** prom-client writes a histogram series as cumulative `_bucket` lines (le), then `_sum` and `_count`. */
function promHistogramPoints(
  def: MetricDefinition,
  family: PromFamily,
  start: HrTime,
  now: HrTime,
): DataPoint<HistogramMetricData['dataPoints'][number]['value']>[] {
  const bounds = [...(def.buckets ?? [])];
  const series = new Map<string, { labels: Labels; cumulative: Map<string, number>; sum: number; count: number }>();
  for (const v of family.values) {
    const { le, ...rest } = stringLabels(v.labels);
    const key = JSON.stringify(rest);
    let s = series.get(key);
    if (s === undefined) {
      s = { labels: rest, cumulative: new Map(), sum: 0, count: 0 };
      series.set(key, s);
    }
    if (v.metricName === `${family.name}_bucket` && le !== undefined) s.cumulative.set(le, v.value);
    else if (v.metricName === `${family.name}_sum`) s.sum = v.value;
    else if (v.metricName === `${family.name}_count`) s.count = v.value;
  }
  return [...series.values()].map((s) => {
    const counts: number[] = [];
    let below = 0;
    for (const bound of bounds) {
      const upTo = s.cumulative.get(String(bound)) ?? below;
      counts.push(upTo - below);
      below = upTo;
    }
    counts.push(s.count - below);
    return point(start, now, s.labels, { buckets: { boundaries: bounds, counts }, sum: s.sum, count: s.count });
  });
}

function point<T>(startTime: HrTime, endTime: HrTime, labels: Labels, value: T): DataPoint<T> {
  return { startTime, endTime, attributes: { ...labels } as Attributes, value };
}

function descriptor(def: MetricDefinition): MetricDescriptor {
  // Seconds and Unix-second timestamps carry the UCUM unit `s`; everything else is a count.
  return { name: def.name, description: def.help, unit: def.name.endsWith('_seconds') ? 's' : '', valueType: ValueType.DOUBLE };
}

function sum(def: MetricDefinition, dataPoints: DataPoint<number>[]): SumMetricData {
  return {
    descriptor: descriptor(def),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints,
  };
}

function gauge(def: MetricDefinition, dataPoints: DataPoint<number>[]): GaugeMetricData {
  return {
    descriptor: descriptor(def),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints,
  };
}

function histogram(def: MetricDefinition, dataPoints: HistogramMetricData['dataPoints']): HistogramMetricData {
  return {
    descriptor: descriptor(def),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints,
  };
}

function groupByName<R extends CounterRow | HistogramRow>(rows: readonly R[]): Map<string, R[]> {
  const out = new Map<string, R[]>();
  for (const row of rows) {
    const list = out.get(row.name);
    if (list === undefined) out.set(row.name, [row]);
    else list.push(row);
  }
  return out;
}

function stringLabels(labels: Readonly<Partial<Record<string, string | number>>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}
