/**
 * Every metric the exporter exposes, in one place: name, type, help, labels, buckets and
 * where the value comes from. docs/metrics.md is checked against this list by a test, and
 * both the store-backed collectors and the self-metrics are built from it.
 */

/** `summary` is a summary without quantiles: only `_sum` and `_count` (a per-series mean). */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/**
 * - `store`: pulumi_* counters, histograms and summaries persisted by the StateStore (via
 *   MetricDeltas) and read at scrape time, so they survive restarts and agree across replicas.
 * - `stack-state`: pulumi_stack_* gauges computed from the store's stack facts at scrape time.
 * - `process`: pulumi_exporter_* self-metrics held in this process (reset on restart).
 */
export type MetricSource = 'store' | 'stack-state' | 'process';

export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly source: MetricSource;
  /** Labels every series carries. */
  readonly labelNames: readonly string[];
  /** Labels present only when enabled by configuration (documented in brackets). */
  readonly optionalLabelNames?: readonly string[];
  /** Finite upper bounds, ascending; histograms only. */
  readonly buckets?: readonly number[];
}

/** endTime - startTime of an update; reaches 4 h because large stacks do take that long. */
export const UPDATE_DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400] as const;
/** pre -> outputs/failed of one resource step; engine timestamps are whole seconds. */
export const RESOURCE_OPERATION_DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600] as const;
/** update end -> exported; up to a day so a backfill after an outage is still bucketed. */
export const EXPORT_DELAY_BUCKETS = [
  1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400,
] as const;
export const API_REQUEST_DURATION_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

const STACK = ['org', 'project', 'stack'] as const;

export const METRICS = {
  updatesTotal: {
    name: 'pulumi_updates_total',
    type: 'counter',
    source: 'store',
    help: 'Completed (terminal) Pulumi updates, counted once each.',
    labelNames: [...STACK, 'kind', 'result'],
  },
  updateFailuresTotal: {
    name: 'pulumi_update_failures_total',
    type: 'counter',
    source: 'store',
    help: 'Completed Pulumi updates whose result is failed (a cancelled update counts under result cancelled of pulumi_updates_total).',
    labelNames: [...STACK, 'kind'],
  },
  updateDurationSeconds: {
    name: 'pulumi_update_duration_seconds',
    type: 'histogram',
    source: 'store',
    help: 'Duration of completed Pulumi updates (service end time minus start time), per project.',
    labelNames: ['org', 'project', 'kind', 'result'],
    optionalLabelNames: ['stack'],
    buckets: UPDATE_DURATION_BUCKETS,
  },
  stackUpdateDurationSeconds: {
    name: 'pulumi_stack_update_duration_seconds',
    type: 'summary',
    source: 'store',
    help: 'Duration of completed Pulumi updates per stack (sum and count only; mean = increase(_sum) / increase(_count)).',
    labelNames: [...STACK, 'kind', 'result'],
  },
  updateResourceChangesTotal: {
    name: 'pulumi_update_resource_changes_total',
    type: 'counter',
    source: 'store',
    help: 'Resource changes reported by completed updates (their resourceChanges), summed per operation.',
    labelNames: [...STACK, 'kind', 'operation'],
  },
  resourceOperationsTotal: {
    name: 'pulumi_resource_operations_total',
    type: 'counter',
    source: 'store',
    help: 'Resource steps seen in the engine events of completed updates, per project.',
    labelNames: ['org', 'project', 'operation', 'resource_type', 'result'],
    optionalLabelNames: ['stack'],
  },
  resourceOperationDurationSeconds: {
    name: 'pulumi_resource_operation_duration_seconds',
    type: 'histogram',
    source: 'store',
    help: 'Duration of finished resource steps (pre event to outputs or failure event; whole-second resolution), per organization.',
    labelNames: ['org', 'operation', 'resource_type'],
    optionalLabelNames: ['project', 'stack'],
    buckets: RESOURCE_OPERATION_DURATION_BUCKETS,
  },
  policyViolationsTotal: {
    name: 'pulumi_policy_violations_total',
    type: 'counter',
    source: 'store',
    help: 'Policy violations reported by the policy events of completed updates.',
    labelNames: [...STACK, 'policy_pack', 'policy', 'enforcement_level'],
  },
  stackResources: {
    name: 'pulumi_stack_resources',
    type: 'gauge',
    source: 'stack-state',
    help: 'Resources in the stack, from the stack list.',
    labelNames: [...STACK],
  },
  stackLastUpdateTimestampSeconds: {
    name: 'pulumi_stack_last_update_timestamp_seconds',
    type: 'gauge',
    source: 'stack-state',
    help: 'End time of the newest completed update of this kind, in Unix seconds.',
    labelNames: [...STACK, 'kind'],
  },
  stackLastUpdateSuccess: {
    name: 'pulumi_stack_last_update_success',
    type: 'gauge',
    source: 'stack-state',
    help: '1 if the newest completed update of this kind succeeded, else 0.',
    labelNames: [...STACK, 'kind'],
  },
  stackLastUpdateDurationSeconds: {
    name: 'pulumi_stack_last_update_duration_seconds',
    type: 'gauge',
    source: 'stack-state',
    help: 'Duration of the newest completed update of this kind (service end time minus start time).',
    labelNames: [...STACK, 'kind'],
  },
  stackLastSuccessfulUpdateTimestampSeconds: {
    name: 'pulumi_stack_last_successful_update_timestamp_seconds',
    type: 'gauge',
    source: 'stack-state',
    help: 'End time of the newest succeeded update of any kind, in Unix seconds.',
    labelNames: [...STACK],
  },
  stackUpdateInProgress: {
    name: 'pulumi_stack_update_in_progress',
    type: 'gauge',
    source: 'stack-state',
    help: '1 while an update of this kind is running, 0 for kinds the stack ran before.',
    labelNames: [...STACK, 'kind'],
  },
  stackUpdateStartedTimestampSeconds: {
    name: 'pulumi_stack_update_started_timestamp_seconds',
    type: 'gauge',
    source: 'stack-state',
    help: 'Start time of the oldest running update of this kind, in Unix seconds.',
    labelNames: [...STACK, 'kind'],
  },
  buildInfo: {
    name: 'pulumi_exporter_build_info',
    type: 'gauge',
    source: 'process',
    help: 'Always 1; labels carry the exporter version, git revision and Node.js version.',
    labelNames: ['version', 'revision', 'nodejs_version'],
  },
  apiRequestsTotal: {
    name: 'pulumi_exporter_api_requests_total',
    type: 'counter',
    source: 'process',
    help: 'HTTP requests to Pulumi Cloud, by endpoint and status code or error class.',
    labelNames: ['endpoint', 'code'],
  },
  apiRequestDurationSeconds: {
    name: 'pulumi_exporter_api_request_duration_seconds',
    type: 'histogram',
    source: 'process',
    help: 'Duration of HTTP requests to Pulumi Cloud, each attempt separately.',
    labelNames: ['endpoint'],
    buckets: API_REQUEST_DURATION_BUCKETS,
  },
  apiRetriesTotal: {
    name: 'pulumi_exporter_api_retries_total',
    type: 'counter',
    source: 'process',
    help: 'Retried requests to Pulumi Cloud, by endpoint and reason.',
    labelNames: ['endpoint', 'reason'],
  },
  pollDurationSeconds: {
    name: 'pulumi_exporter_poll_duration_seconds',
    type: 'gauge',
    source: 'process',
    help: 'Duration of the last full poll cycle.',
    labelNames: [],
  },
  pollsTotal: {
    name: 'pulumi_exporter_polls_total',
    type: 'counter',
    source: 'process',
    help: 'Finished poll cycles, by result (success or failure).',
    labelNames: ['result'],
  },
  lastSuccessfulPollTimestampSeconds: {
    name: 'pulumi_exporter_last_successful_poll_timestamp_seconds',
    type: 'gauge',
    source: 'process',
    help: 'End of the last successful poll cycle in Unix seconds (0 until the first one).',
    labelNames: [],
  },
  stacksWatched: {
    name: 'pulumi_exporter_stacks',
    type: 'gauge',
    source: 'process',
    help: 'Stacks being watched, per organization.',
    labelNames: ['org'],
  },
  backlogUpdates: {
    name: 'pulumi_exporter_backlog_updates',
    type: 'gauge',
    source: 'process',
    help: 'Updates known to be terminal but not yet exported.',
    labelNames: [],
  },
  backfillStacksPending: {
    name: 'pulumi_exporter_backfill_stacks_pending',
    type: 'gauge',
    source: 'process',
    help: 'Stacks the running poll cycle has still to read the history of (0 between cycles).',
    labelNames: [],
  },
  updatesExportedTotal: {
    name: 'pulumi_exporter_updates_exported_total',
    type: 'counter',
    source: 'process',
    help: 'Updates exported by this process, by kind.',
    labelNames: ['kind'],
  },
  engineEventsTotal: {
    name: 'pulumi_exporter_engine_events_total',
    type: 'counter',
    source: 'process',
    help: 'Engine events read, by payload type (unknown types counted as unknown).',
    labelNames: ['type'],
  },
  spansExportedTotal: {
    name: 'pulumi_exporter_spans_exported_total',
    type: 'counter',
    source: 'process',
    help: 'Spans accepted by the trace sink.',
    labelNames: [],
  },
  spansFollowedTotal: {
    name: 'pulumi_exporter_spans_followed_total',
    type: 'counter',
    source: 'process',
    help: 'Step spans sent while their update was still running (also in pulumi_exporter_spans_exported_total).',
    labelNames: [],
  },
  spanExportFailuresTotal: {
    name: 'pulumi_exporter_span_export_failures_total',
    type: 'counter',
    source: 'process',
    help: 'Failed span exports, by reason.',
    labelNames: ['reason'],
  },
  exportDelaySeconds: {
    name: 'pulumi_exporter_export_delay_seconds',
    type: 'histogram',
    source: 'process',
    help: 'Time from an update end to its export (the freshness SLO).',
    labelNames: [],
    buckets: EXPORT_DELAY_BUCKETS,
  },
  errorsTotal: {
    name: 'pulumi_exporter_errors_total',
    type: 'counter',
    source: 'process',
    help: 'Errors by error code (see docs/errors.md).',
    labelNames: ['code'],
  },
  leader: {
    name: 'pulumi_exporter_leader',
    type: 'gauge',
    source: 'process',
    help: '1 on the replica that currently owns exporting, else 0.',
    labelNames: [],
  },
} as const satisfies Record<string, MetricDefinition>;

/** All definitions in exposition order. */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = Object.values(METRICS);
