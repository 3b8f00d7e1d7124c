import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { labelsKey } from '../../../src/domain/metric-delta.js';
import { RESOURCE_OPERATION_DURATION_BUCKETS, UPDATE_DURATION_BUCKETS } from '../../../src/metrics/definitions.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../../../src/metrics/update-deltas.js';
import { canonicalLabels } from '../../../src/state/delta-rules.js';
import { reshapeMetricRows } from '../../../src/state/metric-reshape.js';
import { SCHEMA_MIGRATIONS_TABLE_SQL, SQLITE_MIGRATIONS, pendingMigrations } from '../../../src/state/sqlite-migrations.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import type { CounterRow, HistogramRow } from '../../../src/state/state-store.js';

/*
 * Migration 3 carries the metric rows of a version-2 database (per-stack duration
 * histograms and operation counters) to the cardinality budget without losing or doubling
 * a single count.
 */

type Row = Record<string, string>;

/** Non-cumulative bucket counts of a set of observations, as version 2 stored them. */
function bucketCounts(buckets: readonly number[], values: readonly number[]): number[] {
  const counts = new Array<number>(buckets.length + 1).fill(0);
  for (const v of values) {
    const i = buckets.findIndex((b) => v <= b);
    counts[i === -1 ? buckets.length : i] = (counts[i === -1 ? buckets.length : i] as number) + 1;
  }
  return counts;
}

const V2_UPDATE_DURATIONS: readonly { labels: Row; values: number[] }[] = [
  { labels: { org: 'acme', project: 'web', stack: 'prod', kind: 'update', result: 'succeeded' }, values: [42, 400, 3] },
  { labels: { org: 'acme', project: 'web', stack: 'dev', kind: 'update', result: 'succeeded' }, values: [12, 20000] },
  { labels: { org: 'acme', project: 'web', stack: 'dev', kind: 'destroy', result: 'failed' }, values: [7] },
  { labels: { org: 'acme', project: 'api', stack: 'prod', kind: 'update', result: 'succeeded' }, values: [65] },
];

const V2_OPERATION_DURATIONS: readonly { labels: Row; values: number[] }[] = [
  { labels: { org: 'acme', project: 'web', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' }, values: [1, 12] },
  { labels: { org: 'acme', project: 'api', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' }, values: [2, 5000] },
  // Written with metrics.resourceOperationDurationByStack on.
  { labels: { org: 'acme', project: 'api', stack: 'prod', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' }, values: [30] },
  { labels: { org: 'acme', project: 'web', operation: 'delete', resource_type: 'aws:iam/role:Role' }, values: [4] },
];

const V2_COUNTERS: readonly { name: string; labels: Row; value: number }[] = [
  { name: 'pulumi_resource_operations_total', labels: { org: 'acme', project: 'web', stack: 'prod', operation: 'create', resource_type: 'aws:s3/bucket:Bucket', result: 'succeeded' }, value: 3 },
  { name: 'pulumi_resource_operations_total', labels: { org: 'acme', project: 'web', stack: 'dev', operation: 'create', resource_type: 'aws:s3/bucket:Bucket', result: 'succeeded' }, value: 4 },
  { name: 'pulumi_resource_operations_total', labels: { org: 'acme', project: 'web', stack: 'dev', operation: 'create', resource_type: 'aws:s3/bucket:Bucket', result: 'failed' }, value: 1 },
  { name: 'pulumi_updates_total', labels: { org: 'acme', project: 'web', stack: 'prod', kind: 'update', result: 'succeeded' }, value: 3 },
  { name: 'pulumi_updates_total', labels: { org: 'acme', project: 'web', stack: 'dev', kind: 'update', result: 'succeeded' }, value: 2 },
];

/** A database as a version-2 exporter left it. */
function writeVersion2(path: string): void {
  const raw = new Database(path);
  raw.exec(SCHEMA_MIGRATIONS_TABLE_SQL);
  for (const m of pendingMigrations([], SQLITE_MIGRATIONS.slice(0, 2))) {
    raw.exec(m.sql);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(m.version, m.name, 1);
  }
  const histogram = raw.prepare(
    `INSERT INTO histograms (name, labels_key, labels_json, buckets_json, bucket_counts_json, sum, count) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const addHistograms = (name: string, buckets: readonly number[], rows: readonly { labels: Row; values: number[] }[]): void => {
    for (const { labels, values } of rows) {
      histogram.run(
        name,
        labelsKey(labels),
        JSON.stringify(canonicalLabels(labels)),
        JSON.stringify(buckets),
        JSON.stringify(bucketCounts(buckets, values)),
        values.reduce((a, b) => a + b, 0),
        values.length,
      );
    }
  };
  addHistograms('pulumi_update_duration_seconds', UPDATE_DURATION_BUCKETS, V2_UPDATE_DURATIONS);
  addHistograms('pulumi_resource_operation_duration_seconds', RESOURCE_OPERATION_DURATION_BUCKETS, V2_OPERATION_DURATIONS);
  const counter = raw.prepare('INSERT INTO counters (name, labels_key, labels_json, value) VALUES (?, ?, ?, ?)');
  for (const c of V2_COUNTERS) counter.run(c.name, labelsKey(c.labels), JSON.stringify(canonicalLabels(c.labels)), c.value);
  raw.prepare("INSERT INTO stacks (org, project, stack, cursor_version, first_seen_ms) VALUES ('acme', 'web', 'prod', 3, 1)").run();
  const ledger = raw.prepare(
    `INSERT INTO exported_updates (org, project, stack, update_id, kind, version, result, start_time, end_time, exported_at_ms)
     VALUES ('acme', 'web', 'prod', ?, 'update', ?, 'succeeded', ?, ?, 1)`,
  );
  ledger.run('u1', 1, 1_000, 1_042);
  ledger.run('u3', 3, 5_000, 5_003);
  raw
    .prepare("INSERT INTO last_updates (org, project, stack, kind, result, end_time) VALUES ('acme', 'web', 'prod', 'update', 'succeeded', 5003)")
    .run();
  raw.close();
}

function find<T extends { name: string; labels: Readonly<Record<string, string>> }>(rows: readonly T[], name: string, labels: Row): T | undefined {
  return rows.find((r) => r.name === name && labelsKey(r.labels) === labelsKey(labels));
}

const total = (rows: readonly HistogramRow[], name: string): { count: number; sum: number; buckets: number[] } => {
  const of = rows.filter((r) => r.name === name);
  return {
    count: of.reduce((n, r) => n + r.count, 0),
    sum: of.reduce((n, r) => n + r.sum, 0),
    buckets: of.reduce<number[]>((acc, r) => r.bucketCounts.map((c, i) => c + (acc[i] ?? 0)), []),
  };
};

describe('SQLite migration 3: metric cardinality budget', () => {
  let dir: string;
  let store: SqliteStateStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pue-migrate-'));
    const path = join(dir, 'state.db');
    writeVersion2(path);
    store = new SqliteStateStore({ path });
    await store.migrate();
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('folds per-stack update durations into project histograms, bucket by bucket', async () => {
    const rows = await store.readHistograms();
    const web = find(rows, 'pulumi_update_duration_seconds', { org: 'acme', project: 'web', kind: 'update', result: 'succeeded' });
    expect(web).toMatchObject({
      buckets: UPDATE_DURATION_BUCKETS,
      bucketCounts: bucketCounts(UPDATE_DURATION_BUCKETS, [42, 400, 3, 12, 20000]),
      sum: 42 + 400 + 3 + 12 + 20000,
      count: 5,
    });
    expect(rows.filter((r) => r.name === 'pulumi_update_duration_seconds' && 'stack' in r.labels)).toEqual([]);
    // Nothing lost, nothing doubled.
    const all = V2_UPDATE_DURATIONS.flatMap((r) => r.values);
    expect(total(rows, 'pulumi_update_duration_seconds')).toEqual({
      count: all.length,
      sum: all.reduce((a, b) => a + b, 0),
      buckets: bucketCounts(UPDATE_DURATION_BUCKETS, all),
    });
  });

  it('derives the per-stack summary sum and count from the old per-stack histograms', async () => {
    const rows = await store.readHistograms();
    const summaries = rows.filter((r) => r.name === 'pulumi_stack_update_duration_seconds');
    expect(summaries).toHaveLength(V2_UPDATE_DURATIONS.length);
    for (const { labels, values } of V2_UPDATE_DURATIONS) {
      expect(find(summaries, 'pulumi_stack_update_duration_seconds', labels)).toMatchObject({
        buckets: [],
        bucketCounts: [values.length],
        sum: values.reduce((a, b) => a + b, 0),
        count: values.length,
      });
    }
  });

  it('sums resource operation counts without stack and durations without project and stack', async () => {
    const counters = await store.readCounters();
    const ops = counters.filter((c) => c.name === 'pulumi_resource_operations_total');
    expect(ops.map((c) => ({ labels: c.labels, value: c.value }))).toEqual([
      { labels: { org: 'acme', operation: 'create', project: 'web', resource_type: 'aws:s3/bucket:Bucket', result: 'failed' }, value: 1 },
      { labels: { org: 'acme', operation: 'create', project: 'web', resource_type: 'aws:s3/bucket:Bucket', result: 'succeeded' }, value: 7 },
    ]);
    // Other counters keep their per-stack labels and values.
    expect(counters.filter((c) => c.name === 'pulumi_updates_total').map((c) => c.value)).toEqual([2, 3]);

    const rows = await store.readHistograms();
    const create = find(rows, 'pulumi_resource_operation_duration_seconds', { org: 'acme', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' });
    expect(create).toMatchObject({ bucketCounts: bucketCounts(RESOURCE_OPERATION_DURATION_BUCKETS, [1, 12, 2, 5000, 30]), sum: 5045, count: 5 });
    const all = V2_OPERATION_DURATIONS.flatMap((r) => r.values);
    expect(total(rows, 'pulumi_resource_operation_duration_seconds').count).toBe(all.length);
    expect(rows.filter((r) => r.name === 'pulumi_resource_operation_duration_seconds').every((r) => !('project' in r.labels) && !('stack' in r.labels))).toBe(true);
  });

  it('takes the last update duration from the ledger and keeps counting onto the migrated series', async () => {
    await store.replaceOrgStacks('acme', [{ org: 'acme', project: 'web', stack: 'prod' }], 2);
    expect(await store.readLastUpdates()).toEqual([
      { stack: { org: 'acme', project: 'web', stack: 'prod' }, kind: 'update', result: 'succeeded', endTime: 5_003, durationSeconds: 3 },
    ]);
    const stack = { org: 'acme', project: 'web', stack: 'prod' };
    const before = await store.readMetricsStamp();
    await store.commitUpdate({
      update: { stack, updateId: 'u4', kind: 'update', version: 4, result: 'succeeded', startTime: 6_000, endTime: 6_030 },
      deltas: updateMetricDeltas({
        stack,
        updateId: 'u4',
        kind: 'update',
        result: 'succeeded',
        startTime: 6_000,
        endTime: 6_030,
        resourceChanges: {},
        operations: [{ urn: 'urn:x', op: 'create', resourceType: 'aws:s3/bucket:Bucket', result: 'succeeded', durationSeconds: 2 }],
        policyViolations: [],
        detail: DEFAULT_METRIC_DETAIL,
      }),
      exportedAtMs: 7_000_000,
    });
    expect(await store.readMetricsStamp()).toBeGreaterThan(before);
    const rows = await store.readHistograms();
    expect(find(rows, 'pulumi_update_duration_seconds', { org: 'acme', project: 'web', kind: 'update', result: 'succeeded' })?.count).toBe(6);
    expect(find(rows, 'pulumi_stack_update_duration_seconds', { ...stack, kind: 'update', result: 'succeeded' })).toMatchObject({ count: 4, sum: 475 });
    expect(find(rows, 'pulumi_resource_operation_duration_seconds', { org: 'acme', operation: 'create', resource_type: 'aws:s3/bucket:Bucket' })?.count).toBe(6);
    const ops = find(await store.readCounters(), 'pulumi_resource_operations_total', {
      org: 'acme',
      project: 'web',
      operation: 'create',
      resource_type: 'aws:s3/bucket:Bucket',
      result: 'succeeded',
    });
    expect(ops?.value).toBe(8);
  });
});

describe('reshapeMetricRows', () => {
  it('refuses to merge histograms whose bucket bounds differ', () => {
    const row = (buckets: number[]): HistogramRow => ({
      name: 'pulumi_update_duration_seconds',
      labels: { org: 'a', project: 'p', stack: 's', kind: 'update', result: 'succeeded' },
      buckets,
      bucketCounts: new Array<number>(buckets.length + 1).fill(1),
      sum: 1,
      count: buckets.length + 1,
    });
    const other = { ...row([1, 2, 3]), labels: { ...row([]).labels, stack: 't' } };
    expect(() => reshapeMetricRows({ counters: [], histograms: [row([1, 2]), other] })).toThrow(
      expect.objectContaining({ code: 'STATE_MIGRATION_FAILED' }) as Error,
    );
  });

  it('leaves rows of other metrics as they are', () => {
    const counters: CounterRow[] = [{ name: 'pulumi_updates_total', labels: { stack: 's', org: 'a' }, value: 3 }];
    expect(reshapeMetricRows({ counters, histograms: [] }).counters).toEqual([
      { name: 'pulumi_updates_total', labels: { org: 'a', stack: 's' }, value: 3 },
    ]);
  });
});
