import type { Labels } from '../domain/metric-delta.js';
import { labelsKey } from '../domain/metric-delta.js';
import { ExporterError } from '../errors.js';
import { canonicalLabels, sameBuckets } from './delta-rules.js';
import type { CounterRow, HistogramRow } from './state-store.js';

/*
 * Carries stored metric rows of schema version 2 (per-stack duration histograms and
 * operation counters) to the cardinality budget of the telemetry conventions, exactly:
 *
 * - pulumi_update_duration_seconds{org,project,stack,kind,result} becomes
 *   pulumi_stack_update_duration_seconds (a summary: no buckets, same sum and count) and is
 *   folded, bucket by bucket, into pulumi_update_duration_seconds{org,project,kind,result};
 * - pulumi_resource_operations_total loses `stack` (values summed);
 * - pulumi_resource_operation_duration_seconds loses `project` and `stack` (buckets summed).
 *
 * Every count, sum and bucket is preserved in total; nothing is counted twice. Pure, so the
 * SQLite migration and any other store apply the same rules.
 */

const UPDATE_DURATION = 'pulumi_update_duration_seconds';
const STACK_UPDATE_DURATION = 'pulumi_stack_update_duration_seconds';
const OPERATIONS = 'pulumi_resource_operations_total';
const OPERATION_DURATION = 'pulumi_resource_operation_duration_seconds';

export interface MetricRows {
  readonly counters: readonly CounterRow[];
  readonly histograms: readonly HistogramRow[];
}

export function reshapeMetricRows(rows: MetricRows): { counters: CounterRow[]; histograms: HistogramRow[] } {
  const counters = new Map<string, CounterRow>();
  for (const row of rows.counters) {
    const labels = row.name === OPERATIONS ? without(row.labels, ['stack']) : canonicalLabels(row.labels);
    const key = `${row.name}${labelsKey(labels)}`;
    const known = counters.get(key);
    counters.set(key, { name: row.name, labels, value: (known?.value ?? 0) + row.value });
  }

  const histograms = new Map<string, HistogramRow>();
  const add = (row: HistogramRow): void => {
    const key = `${row.name}${labelsKey(row.labels)}`;
    const known = histograms.get(key);
    if (known === undefined) {
      histograms.set(key, { ...row, labels: canonicalLabels(row.labels), exemplars: row.exemplars ?? [] });
      return;
    }
    if (!sameBuckets(known.buckets, row.buckets) || known.bucketCounts.length !== row.bucketCounts.length) {
      throw new ExporterError(
        'STATE_MIGRATION_FAILED',
        `cannot merge stored ${row.name} series with different bucket bounds [${known.buckets.join(', ')}] and [${row.buckets.join(', ')}]`,
        { details: { metric: row.name } },
      );
    }
    histograms.set(key, {
      ...known,
      bucketCounts: known.bucketCounts.map((n, i) => n + (row.bucketCounts[i] ?? 0)),
      sum: known.sum + row.sum,
      count: known.count + row.count,
      // An exemplar is only a pointer to one trace; the merged series keeps the first seen.
      exemplars: known.exemplars ?? [],
    });
  };

  for (const row of rows.histograms) {
    if (row.name === UPDATE_DURATION && row.labels['stack'] !== undefined) {
      add({ name: STACK_UPDATE_DURATION, labels: row.labels, buckets: [], bucketCounts: [row.count], sum: row.sum, count: row.count });
      add({ ...row, labels: without(row.labels, ['stack']) });
    } else if (row.name === OPERATION_DURATION) {
      add({ ...row, labels: without(row.labels, ['project', 'stack']) });
    } else {
      add(row);
    }
  }
  return { counters: [...counters.values()], histograms: [...histograms.values()] };
}

function without(labels: Labels, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (!names.includes(k)) out[k] = v;
  return canonicalLabels(out);
}
