import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ExporterError, type ErrorCode } from '../../../src/errors.js';
import type { ApiEndpoint, RetryReason } from '../../../src/pulumi/api-observer.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { memoryStore } from '../../helpers/memory-store.js';
import type { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import { familyLines, openMetricsProblems } from './exposition-checks.js';
import { exerciseSelfMetrics, PROD, seedStore } from './seed-store.js';

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

async function seeded(): Promise<{ store: SqliteStateStore; metrics: ExporterMetrics }> {
  const store = await memoryStore();
  await seedStore(store);
  return { store, metrics: new ExporterMetrics({ store, version: '1.2.3', revision: 'abc1234' }) };
}

function lines(body: string): string[] {
  return body.split('\n');
}

/** The sample lines of one family, without HELP/TYPE. */
function samples(body: string, family: string): string[] {
  return familyLines(body, family).filter((l) => !l.startsWith('#'));
}

const P = 'org="acme",project="web",stack="prod"';
const S = 'org="acme",project="web",stack="staging"';
const W = 'org="acme",project="web"';

describe('ExporterMetrics exposition of stored metrics', () => {
  it('serves the stored update counters with their labels in convention order', async () => {
    const { metrics } = await seeded();
    const { contentType, body } = await metrics.render();
    expect(contentType).toBe(PROMETHEUS);
    expect(familyLines(body, 'pulumi_updates_total')).toEqual([
      '# HELP pulumi_updates_total Completed (terminal) Pulumi updates, counted once each.',
      '# TYPE pulumi_updates_total counter',
      `pulumi_updates_total{${P},kind="update",result="failed"} 1`,
      `pulumi_updates_total{${P},kind="update",result="succeeded"} 2`,
      `pulumi_updates_total{${S},kind="destroy",result="cancelled"} 1`,
    ]);
    // The cancelled destroy is not a failure, but its series exists (at 0) for increase().
    expect(samples(body, 'pulumi_update_failures_total')).toEqual([
      `pulumi_update_failures_total{${P},kind="update"} 1`,
      `pulumi_update_failures_total{${S},kind="destroy"} 0`,
    ]);
    expect(samples(body, 'pulumi_update_resource_changes_total')).toEqual([
      `pulumi_update_resource_changes_total{${P},kind="update",operation="create"} 3`,
      `pulumi_update_resource_changes_total{${P},kind="update",operation="same"} 12`,
      `pulumi_update_resource_changes_total{${P},kind="update",operation="update"} 1`,
    ]);
    // Per project by default: no stack label.
    expect(samples(body, 'pulumi_resource_operations_total')).toEqual([
      `pulumi_resource_operations_total{${W},operation="create",resource_type="aws:s3/bucket:Bucket",result="succeeded"} 3`,
      `pulumi_resource_operations_total{${W},operation="delete",resource_type="aws:s3/bucketPolicy:BucketPolicy",result="interrupted"} 1`,
      `pulumi_resource_operations_total{${W},operation="update",resource_type="aws:iam/role:Role",result="failed"} 1`,
    ]);
    expect(samples(body, 'pulumi_policy_violations_total')).toEqual([
      `pulumi_policy_violations_total{${P},policy_pack="aws-guard",policy="s3-no-public-read",enforcement_level="mandatory"} 1`,
    ]);
  });

  it('serves stored histograms with cumulative buckets, +Inf, sum and count', async () => {
    const { metrics } = await seeded();
    const { body } = await metrics.render();
    // Per project: the updates of both stacks of project web share these series.
    const ok = `${W},kind="update",result="succeeded"`;
    const okLines = samples(body, 'pulumi_update_duration_seconds').filter((l) => l.includes(ok));
    // Observations 42 s and 400 s.
    expect(okLines).toEqual([
      `pulumi_update_duration_seconds_bucket{${ok},le="1"} 0`,
      `pulumi_update_duration_seconds_bucket{${ok},le="5"} 0`,
      `pulumi_update_duration_seconds_bucket{${ok},le="10"} 0`,
      `pulumi_update_duration_seconds_bucket{${ok},le="30"} 0`,
      `pulumi_update_duration_seconds_bucket{${ok},le="60"} 1`,
      `pulumi_update_duration_seconds_bucket{${ok},le="120"} 1`,
      `pulumi_update_duration_seconds_bucket{${ok},le="300"} 1`,
      `pulumi_update_duration_seconds_bucket{${ok},le="600"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="1200"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="1800"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="3600"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="7200"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="14400"} 2`,
      `pulumi_update_duration_seconds_bucket{${ok},le="+Inf"} 2`,
      `pulumi_update_duration_seconds_sum{${ok}} 442`,
      `pulumi_update_duration_seconds_count{${ok}} 2`,
    ]);

    // Resource steps: create Bucket took 1, 12 and 2 s; per organization by default.
    const create = 'org="acme",operation="create",resource_type="aws:s3/bucket:Bucket"';
    const createLines = samples(body, 'pulumi_resource_operation_duration_seconds').filter((l) => l.includes(create));
    expect(createLines).toEqual([
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="1"} 1`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="2"} 2`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="5"} 2`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="10"} 2`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="30"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="60"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="120"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="300"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="600"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="1200"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="1800"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="3600"} 3`,
      `pulumi_resource_operation_duration_seconds_bucket{${create},le="+Inf"} 3`,
      `pulumi_resource_operation_duration_seconds_sum{${create}} 15`,
      `pulumi_resource_operation_duration_seconds_count{${create}} 3`,
    ]);
    // The interrupted delete has no duration series.
    expect(body).not.toContain('pulumi_resource_operation_duration_seconds_count{org="acme",operation="delete"');
  });

  it('serves per-stack update durations as a summary (sum and count) and the last duration as a gauge', async () => {
    const { metrics } = await seeded();
    const { body } = await metrics.render();
    expect(familyLines(body, 'pulumi_stack_update_duration_seconds')).toEqual([
      '# HELP pulumi_stack_update_duration_seconds Duration of completed Pulumi updates per stack (sum and count only; mean = increase(_sum) / increase(_count)).',
      '# TYPE pulumi_stack_update_duration_seconds summary',
      `pulumi_stack_update_duration_seconds_sum{${P},kind="update",result="failed"} 5`,
      `pulumi_stack_update_duration_seconds_count{${P},kind="update",result="failed"} 1`,
      `pulumi_stack_update_duration_seconds_sum{${P},kind="update",result="succeeded"} 442`,
      `pulumi_stack_update_duration_seconds_count{${P},kind="update",result="succeeded"} 2`,
      `pulumi_stack_update_duration_seconds_sum{${S},kind="destroy",result="cancelled"} 10`,
      `pulumi_stack_update_duration_seconds_count{${S},kind="destroy",result="cancelled"} 1`,
    ]);
    // The newest update of prod took 5 s (it failed); the cancelled destroy of staging 10 s.
    expect(samples(body, 'pulumi_stack_last_update_duration_seconds')).toEqual([
      `pulumi_stack_last_update_duration_seconds{${P},kind="update"} 5`,
      `pulumi_stack_last_update_duration_seconds{${S},kind="destroy"} 10`,
    ]);
  });

  it('computes the stack gauges from the store at scrape time', async () => {
    const { metrics } = await seeded();
    const { body } = await metrics.render();
    expect(samples(body, 'pulumi_stack_resources')).toEqual([`pulumi_stack_resources{${P}} 12`, `pulumi_stack_resources{${S}} 3`]);
    expect(samples(body, 'pulumi_stack_last_update_timestamp_seconds')).toEqual([
      `pulumi_stack_last_update_timestamp_seconds{${P},kind="update"} 3005`,
      `pulumi_stack_last_update_timestamp_seconds{${S},kind="destroy"} 4010`,
    ]);
    expect(samples(body, 'pulumi_stack_last_update_success')).toEqual([
      `pulumi_stack_last_update_success{${P},kind="update"} 0`,
      `pulumi_stack_last_update_success{${S},kind="destroy"} 0`,
    ]);
    expect(samples(body, 'pulumi_stack_last_successful_update_timestamp_seconds')).toEqual([
      `pulumi_stack_last_successful_update_timestamp_seconds{${P}} 2400`,
    ]);
    // Two previews run at once: 1, started at the older start time. Staging ran a destroy before: 0.
    expect(samples(body, 'pulumi_stack_update_in_progress')).toEqual([
      `pulumi_stack_update_in_progress{${P},kind="preview"} 1`,
      `pulumi_stack_update_in_progress{${P},kind="update"} 1`,
      `pulumi_stack_update_in_progress{${S},kind="destroy"} 0`,
    ]);
    expect(samples(body, 'pulumi_stack_update_started_timestamp_seconds')).toEqual([
      `pulumi_stack_update_started_timestamp_seconds{${P},kind="preview"} 5050`,
      `pulumi_stack_update_started_timestamp_seconds{${P},kind="update"} 5000`,
    ]);
  });

  it('reflects store changes at the next scrape: finished updates and forgotten stacks', async () => {
    const { store, metrics } = await seeded();
    await store.setInProgress(PROD, []);
    await store.replaceOrgStacks('acme', [{ ...PROD, resourceCount: 13 }], 2_000_000);
    const { body } = await metrics.render();
    // The per-stack duration summary is stored history like the counters; the gauges go.
    const gauges = body.split('\n').filter((l) => l.startsWith('pulumi_stack_') && !l.startsWith('pulumi_stack_update_duration_seconds'));
    expect(gauges.filter((l) => l.includes('stack="staging"'))).toEqual([]);
    expect(samples(body, 'pulumi_stack_resources')).toEqual([`pulumi_stack_resources{${P}} 13`]);
    expect(samples(body, 'pulumi_stack_update_in_progress')).toEqual([`pulumi_stack_update_in_progress{${P},kind="update"} 0`]);
    expect(samples(body, 'pulumi_stack_update_started_timestamp_seconds')).toEqual([]);
    expect(samples(body, 'pulumi_stack_last_update_timestamp_seconds').some((l) => l.includes('staging'))).toBe(false);
    // Counters of a forgotten stack are history: they stay.
    expect(body).toContain(`pulumi_updates_total{${S},kind="destroy",result="cancelled"} 1`);
  });

  it('serves the same stored values from every instance sharing a store (replicas, restarts)', async () => {
    const { store, metrics } = await seeded();
    const other = new ExporterMetrics({ store, version: '1.2.3', revision: 'abc1234' });
    metrics.setLeader(true);
    const data = (body: string): string[] => lines(body).filter((l) => l.startsWith('pulumi_') && !l.startsWith('pulumi_exporter_'));
    const [a, b] = await Promise.all([metrics.render(), other.render()]);
    expect(data(a.body).length).toBeGreaterThan(50);
    expect(data(b.body)).toEqual(data(a.body));
    expect(a.body).toContain('pulumi_exporter_leader 1');
    expect(b.body).toContain('pulumi_exporter_leader 0');
  });

  it('serves only pulumi_exporter_* series while this replica is not the leader', async () => {
    const { metrics } = await seeded();
    metrics.setLeader(false);
    const follower = lines((await metrics.render()).body);
    expect(follower.filter((l) => l.startsWith('pulumi_') && !l.startsWith('pulumi_exporter_'))).toEqual([]);
    expect(follower).toContain('pulumi_exporter_leader 0');
    metrics.setLeader(true);
    const leader = lines((await metrics.render()).body);
    expect(leader.filter((l) => l.startsWith('pulumi_updates_total')).length).toBeGreaterThan(0);
  });

  it('escapes label values that contain quotes, backslashes or newlines', async () => {
    const store = await memoryStore();
    await store.commitUpdate({
      update: { stack: PROD, updateId: 'u1', kind: 'update', version: 1, result: 'succeeded', startTime: 1, endTime: 2 },
      deltas: {
        counters: [
          {
            name: 'pulumi_policy_violations_total',
            labels: { ...PROD, policy_pack: 'pack "one"', policy: 'a\\b', enforcement_level: 'line\nbreak' },
            value: 1,
          },
        ],
        histograms: [],
      },
      exportedAtMs: 3_000,
    });
    const { body } = await new ExporterMetrics({ store, version: 'v', revision: 'r' }).render();
    expect(body).toContain(
      `pulumi_policy_violations_total{${P},policy_pack="pack \\"one\\"",policy="a\\\\b",enforcement_level="line\\nbreak"} 1`,
    );
  });

  it('leaves out stored rows of metrics it does not define', async () => {
    const store = await memoryStore();
    await store.commitUpdate({
      update: { stack: PROD, updateId: 'u1', kind: 'update', version: 1, result: 'succeeded', startTime: 1, endTime: 2 },
      deltas: { counters: [{ name: 'pulumi_retired_metric_total', labels: { ...PROD }, value: 1 }], histograms: [] },
      exportedAtMs: 3_000,
    });
    const { body } = await new ExporterMetrics({ store, version: 'v', revision: 'r' }).render();
    expect(body).not.toContain('pulumi_retired_metric_total');
  });
});

describe('ExporterMetrics content negotiation', () => {
  it('answers OpenMetrics when asked, with _total only on counter samples and a final # EOF', async () => {
    const { metrics } = await seeded();
    exerciseSelfMetrics(metrics);
    const { contentType, body } = await metrics.render('application/openmetrics-text;version=1.0.0,text/plain;q=0.5');
    expect(contentType).toBe(OPENMETRICS);
    expect(openMetricsProblems(body)).toEqual([]);
    expect(familyLines(body, 'pulumi_updates')).toEqual([
      '# HELP pulumi_updates Completed (terminal) Pulumi updates, counted once each.',
      '# TYPE pulumi_updates counter',
      // Counter samples carry _total in OpenMetrics; the family name does not.
      `pulumi_updates_total{${P},kind="update",result="failed"} 1`,
      `pulumi_updates_total{${P},kind="update",result="succeeded"} 2`,
      `pulumi_updates_total{${S},kind="destroy",result="cancelled"} 1`,
    ]);
    expect(familyLines(body, 'pulumi_exporter_polls')).toEqual([
      '# HELP pulumi_exporter_polls Finished poll cycles, by result (success or failure).',
      '# TYPE pulumi_exporter_polls counter',
      'pulumi_exporter_polls_total{result="success"} 1',
      'pulumi_exporter_polls_total{result="failure"} 0',
    ]);
    expect(body).toContain(`pulumi_update_duration_seconds_bucket{${W},kind="update",result="succeeded",le="+Inf"} 2`);
  });

  it('carries the trace id of the latest update in a bucket as its exemplar, in OpenMetrics only', async () => {
    const { metrics } = await seeded();
    const om = (await metrics.render('application/openmetrics-text')).body;
    const ok = `${W},kind="update",result="succeeded"`;
    // 42 s fell in le=60 and 400 s in le=600; the other buckets have no exemplar.
    expect(samples(om, 'pulumi_update_duration_seconds').filter((l) => l.includes(ok) && l.includes(' # '))).toEqual([
      `pulumi_update_duration_seconds_bucket{${ok},le="60"} 1 # {trace_id="${traceIdFor(PROD, 'a1b2c3d4-0001')}"} 42 1042`,
      `pulumi_update_duration_seconds_bucket{${ok},le="600"} 2 # {trace_id="${traceIdFor(PROD, 'a1b2c3d4-0002')}"} 400 2400`,
    ]);
    const text = (await metrics.render()).body;
    expect(text).not.toContain('trace_id');
  });

  it('keeps the Prometheus format intact after and during OpenMetrics scrapes', async () => {
    const { metrics } = await seeded();
    exerciseSelfMetrics(metrics);
    const before = await metrics.render();
    const [om, text] = await Promise.all([metrics.render('application/openmetrics-text'), metrics.render('text/plain')]);
    const after = await metrics.render();
    expect(om.contentType).toBe(OPENMETRICS);
    expect(text.contentType).toBe(PROMETHEUS);
    expect(text.body).toBe(before.body);
    expect(after.body).toBe(before.body);
    expect(after.body).toContain('# TYPE pulumi_exporter_polls_total counter');
    expect(after.body).toContain('# TYPE pulumi_updates_total counter');
    expect(after.body).not.toContain('# EOF');
  });
});

describe('ExporterMetrics self-metrics', () => {
  it('records what the observers and the scheduler report', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: '1.2.3', revision: 'abc1234' });
    exerciseSelfMetrics(metrics);
    const { body } = await metrics.render();
    const expected = [
      `pulumi_exporter_build_info{version="1.2.3",revision="abc1234",nodejs_version="${process.versions.node}"} 1`,
      'pulumi_exporter_api_requests_total{endpoint="listStacks",code="200"} 1',
      'pulumi_exporter_api_requests_total{endpoint="listUpdates",code="429"} 1',
      'pulumi_exporter_api_requests_total{endpoint="engineEvents",code="timeout"} 1',
      'pulumi_exporter_api_request_duration_seconds_bucket{le="0.25",endpoint="listStacks"} 1',
      'pulumi_exporter_api_request_duration_seconds_bucket{le="10",endpoint="engineEvents"} 0',
      'pulumi_exporter_api_request_duration_seconds_bucket{le="30",endpoint="engineEvents"} 1',
      'pulumi_exporter_api_request_duration_seconds_count{endpoint="listUpdates"} 1',
      'pulumi_exporter_api_retries_total{endpoint="listUpdates",reason="429"} 1',
      'pulumi_exporter_poll_duration_seconds 12.5',
      'pulumi_exporter_polls_total{result="success"} 1',
      'pulumi_exporter_polls_total{result="failure"} 0',
      'pulumi_exporter_last_successful_poll_timestamp_seconds 1700000000',
      'pulumi_exporter_stacks{org="acme"} 2',
      'pulumi_exporter_backlog_updates 4',
      'pulumi_exporter_updates_exported_total{kind="update"} 1',
      'pulumi_exporter_engine_events_total{type="resourcePreEvent"} 3',
      'pulumi_exporter_engine_events_total{type="resOutputsEvent"} 2',
      'pulumi_exporter_engine_events_total{type="unknown"} 1',
      'pulumi_exporter_spans_exported_total 17',
      'pulumi_exporter_span_export_failures_total{reason="http_5xx"} 1',
      'pulumi_exporter_export_delay_seconds_bucket{le="60"} 0',
      'pulumi_exporter_export_delay_seconds_bucket{le="120"} 1',
      'pulumi_exporter_export_delay_seconds_sum 90',
      'pulumi_exporter_export_delay_seconds_count 1',
      'pulumi_exporter_errors_total{code="API_TIMEOUT"} 1',
      'pulumi_exporter_errors_total{code="STATE_ERROR"} 0',
      'pulumi_exporter_leader 1',
    ];
    const got = lines(body);
    for (const line of expected) expect(got).toContain(line);
  });

  it('keeps the last successful poll time when a later poll fails, and reports the last poll', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' });
    expect(metrics.lastPoll()).toBeUndefined();
    metrics.pollFinished('success', 3, 1_700_000_000_000);
    metrics.pollFinished('failure', 7, 1_700_000_060_000);
    const got = lines((await metrics.render()).body);
    expect(got).toContain('pulumi_exporter_last_successful_poll_timestamp_seconds 1700000000');
    expect(got).toContain('pulumi_exporter_poll_duration_seconds 7');
    expect(got).toContain('pulumi_exporter_polls_total{result="failure"} 1');
    expect(metrics.lastPoll()).toEqual({ result: 'failure', finishedAt: '2023-11-14T22:14:20.000Z', durationSeconds: 7 });
  });

  it('starts every error code and both poll results at 0, and the leader gauge at 0', async () => {
    const { body } = await new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' }).render();
    expect(samples(body, 'pulumi_exporter_errors_total').every((l) => l.endsWith(' 0'))).toBe(true);
    expect(samples(body, 'pulumi_exporter_errors_total')).toContain('pulumi_exporter_errors_total{code="INTERNAL"} 0');
    expect(body).toContain('pulumi_exporter_leader 0');
    expect(body).toContain('pulumi_exporter_last_successful_poll_timestamp_seconds 0');
  });

  it('uses its own registry: nothing lands in the global one and instances do not share values', async () => {
    const a = new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' });
    const b = new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' });
    a.spansExported(5);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
    expect((await a.render()).body).toContain('pulumi_exporter_spans_exported_total 5');
    expect((await b.render()).body).toContain('pulumi_exporter_spans_exported_total 0');
    expect(a.registry).not.toBe(globalRegistry);
  });

  it('keeps labels bounded: anything outside the known values or a short word is folded', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' });
    const urn = 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::site';
    metrics.request('listStacks', 'ECONNRESET while reading', 0.1);
    metrics.request(urn as ApiEndpoint, '200', 0.1);
    metrics.retry('listStacks', 'because' as RetryReason);
    metrics.exportFailed(`rejected span for ${urn}`);
    metrics.updateExported('Update with message: fix the bucket', 1);
    metrics.engineEvents({ [urn]: 2, diagnosticEvent: 1 });
    metrics.error('NO_SUCH_CODE' as ErrorCode);
    const got = lines((await metrics.render()).body);
    expect(got).toContain('pulumi_exporter_api_requests_total{endpoint="listStacks",code="other"} 1');
    expect(got).toContain('pulumi_exporter_api_requests_total{endpoint="other",code="200"} 1');
    expect(got).toContain('pulumi_exporter_api_retries_total{endpoint="listStacks",reason="other"} 1');
    expect(got).toContain('pulumi_exporter_span_export_failures_total{reason="other"} 1');
    expect(got).toContain('pulumi_exporter_updates_exported_total{kind="other"} 1');
    expect(got).toContain('pulumi_exporter_engine_events_total{type="unknown"} 2');
    expect(got).toContain('pulumi_exporter_engine_events_total{type="diagnosticEvent"} 1');
    expect(got).toContain('pulumi_exporter_errors_total{code="INTERNAL"} 1');
    expect(got.join('\n')).not.toContain('urn:');
  });

  it('ignores non-finite and negative values instead of corrupting a series', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: 'v', revision: 'r' });
    metrics.spansExported(Number.NaN);
    metrics.spansExported(-3);
    metrics.setBacklog(Number.POSITIVE_INFINITY);
    metrics.updateExported('update', -5);
    metrics.engineEvents({ resourcePreEvent: Number.NaN });
    const got = lines((await metrics.render()).body);
    expect(got).toContain('pulumi_exporter_spans_exported_total 0');
    expect(got).toContain('pulumi_exporter_backlog_updates 0');
    // A negative delay (clock skew) is observed as 0, not dropped: the update was exported.
    expect(got).toContain('pulumi_exporter_export_delay_seconds_bucket{le="1"} 1');
    expect(got.some((l) => l.startsWith('pulumi_exporter_engine_events_total{'))).toBe(false);
  });
});

describe('ExporterMetrics when the store fails', () => {
  function failing(store: StateStore, failingReads: readonly (keyof StateStore)[]): StateStore {
    return new Proxy(store, {
      get(target, prop, receiver) {
        if (failingReads.includes(prop as keyof StateStore)) {
          return () => Promise.reject(new ExporterError('STATE_ERROR', 'database is locked'));
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  it('fails the whole scrape with the store error, counts it and reports it until a scrape reads the store again', async () => {
    const store = await memoryStore();
    await seedStore(store);
    const all: (keyof StateStore)[] = ['readCounters', 'readHistograms', 'listStacks', 'readLastUpdates', 'readLastSuccesses', 'listInProgress'];
    let broken = true;
    const failingStore = failing(store, all);
    const switchable = new Proxy(store, {
      get: (target, prop, receiver) => Reflect.get(broken ? failingStore : target, prop, receiver) as unknown,
    });
    const metrics = new ExporterMetrics({ store: switchable, version: 'v', revision: 'r' });
    expect(metrics.storeReadFailure()).toBeUndefined();
    await expect(metrics.render()).rejects.toMatchObject({ code: 'STATE_ERROR' });
    expect(metrics.storeReadFailure()).toMatchObject({ code: 'STATE_ERROR' });

    broken = false;
    const { body } = await metrics.render('application/openmetrics-text');
    expect(metrics.storeReadFailure()).toBeUndefined();
    expect(body).toContain(`pulumi_updates_total{${P},kind="update",result="succeeded"} 2`);
    expect(body).toContain('pulumi_exporter_errors_total{code="STATE_ERROR"} 1');
    expect(openMetricsProblems(body)).toEqual([]);
  });

  it('fails the scrape when only one of the reads fails, rather than serving a partial exposition', async () => {
    const store = await memoryStore();
    await seedStore(store);
    const metrics = new ExporterMetrics({ store: failing(store, ['readHistograms']), version: 'v', revision: 'r' });
    await expect(metrics.render()).rejects.toMatchObject({ code: 'STATE_ERROR' });
    expect(metrics.storeReadFailure()).toBeInstanceOf(ExporterError);
  });
});
