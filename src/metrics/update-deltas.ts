import type { CounterDelta, HistogramObservation, Labels, MetricDeltas } from '../domain/metric-delta.js';
import { labelsKey } from '../domain/metric-delta.js';
import type { StackRef } from '../domain/stack.js';
import { traceIdFor } from '../conversion/trace-ids.js';
import type { PolicyViolation, ResourceOperation } from '../domain/trace.js';
import { isPreviewKind, type TerminalResult } from '../domain/update.js';
import { METRICS } from './definitions.js';

/**
 * Opt-in per-stack detail (metrics.* in the configuration). Each multiplies its family's
 * series by the number of stacks (or projects), so all are off by default; docs/metrics.md
 * gives the series cost of each.
 */
export interface MetricDetail {
  /** Adds `stack` to pulumi_update_duration_seconds. */
  readonly updateDurationByStack: boolean;
  /** Adds `stack` to pulumi_resource_operations_total. */
  readonly resourceOperationsByStack: boolean;
  /** Adds `project` and `stack` to pulumi_resource_operation_duration_seconds. */
  readonly resourceOperationDurationByStack: boolean;
}

export const DEFAULT_METRIC_DETAIL: MetricDetail = {
  updateDurationByStack: false,
  resourceOperationsByStack: false,
  resourceOperationDurationByStack: false,
};

export interface UpdateDeltaInput {
  readonly stack: StackRef;
  /** Only for the exemplar: the trace id of the update is derived from it. */
  readonly updateId: string;
  readonly kind: string;
  readonly result: TerminalResult;
  /** Unix seconds. */
  readonly startTime: number;
  /** Unix seconds. */
  readonly endTime: number;
  readonly resourceChanges: Readonly<Record<string, number>>;
  readonly operations: readonly ResourceOperation[];
  readonly policyViolations: readonly PolicyViolation[];
  readonly detail: MetricDetail;
}

/**
 * The increments one terminal update makes to the persisted pulumi_* counters and
 * histograms. Pure: the store applies the result in the transaction that marks the update
 * exported, which is what makes every update count exactly once.
 *
 * A preview (any preview kind) counts with kind="preview" into the update counters,
 * durations and resource changes only (see below).
 *
 * pulumi_update_failures_total counts result `failed` only, as the telemetry conventions
 * define it, so it always equals pulumi_updates_total{result="failed"}; a cancelled update
 * (told apart by its summary event) counts under result="cancelled".
 */
export function updateMetricDeltas(input: UpdateDeltaInput): MetricDeltas {
  const { stack, result, detail } = input;
  const kind = kindLabel(input.kind);
  const preview = kind === 'preview';
  const base = { org: stack.org, project: stack.project, stack: stack.stack };
  const project = { org: stack.org, project: stack.project };
  // Clock skew or a missing end time must not produce a negative duration.
  const duration = Math.max(0, input.endTime - input.startTime);
  const counters = new CounterSums();
  const histograms: HistogramObservation[] = [];

  counters.add(METRICS.updatesTotal.name, { ...base, kind, result }, 1);
  // Added with 0 for other results, so the series exists before the first failure and
  // increase() in Prometheus sees that first failure too.
  counters.add(METRICS.updateFailuresTotal.name, { ...base, kind }, result === 'failed' ? 1 : 0);
  histograms.push({
    name: METRICS.updateDurationSeconds.name,
    labels: { ...(detail.updateDurationByStack ? base : project), kind, result },
    buckets: METRICS.updateDurationSeconds.buckets,
    value: duration,
    // Lets Grafana jump from a slow bucket to the trace of an update that fell in it.
    exemplar: { traceId: traceIdFor(stack, input.updateId), timestamp: input.endTime },
  });
  // A summary is stored as a histogram without finite buckets: only sum and count.
  histograms.push({
    name: METRICS.stackUpdateDurationSeconds.name,
    labels: { ...base, kind, result },
    buckets: [],
    value: duration,
  });

  for (const operation of Object.keys(input.resourceChanges).sort()) {
    const n = input.resourceChanges[operation] ?? 0;
    if (Number.isFinite(n) && n > 0) {
      counters.add(METRICS.updateResourceChangesTotal.name, { ...base, kind, operation }, n);
    }
  }

  // A preview's steps were only planned: they feed no resource-step or policy metrics, which
  // have no kind label (the update that follows runs, and is counted with, the same steps).
  if (preview) return { counters: counters.deltas(), histograms };

  // The steps of all updates fall into comparatively few series: each series gets one
  // labels object, so its labels are keyed once (labelsKey remembers them), not per step.
  // Scopes of one length, whatever the detail setting, so no tuple is a prefix of another.
  const byStack = [':stack', stack.org, stack.project, stack.stack];
  const operationScope = detail.resourceOperationsByStack ? byStack : [':project', stack.org, stack.project, ''];
  const durationScope = detail.resourceOperationDurationByStack ? byStack : [':org', stack.org, '', ''];
  for (const op of input.operations) {
    counters.add(
      METRICS.resourceOperationsTotal.name,
      OPERATION_LABELS.get([...operationScope, op.op, op.resourceType, op.result], () => ({
        ...(detail.resourceOperationsByStack ? base : project),
        operation: op.op,
        resource_type: op.resourceType,
        result: op.result,
      })),
      1,
    );
    // An interrupted step never finished, so it has no duration to observe.
    if (op.result === 'interrupted') continue;
    const labels = DURATION_LABELS.get([...durationScope, op.op, op.resourceType], () => ({
      ...(detail.resourceOperationDurationByStack ? base : { org: stack.org }),
      operation: op.op,
      resource_type: op.resourceType,
    }));
    histograms.push({
      name: METRICS.resourceOperationDurationSeconds.name,
      labels,
      buckets: METRICS.resourceOperationDurationSeconds.buckets,
      value: Math.max(0, op.durationSeconds),
    });
  }

  for (const v of input.policyViolations) {
    counters.add(
      METRICS.policyViolationsTotal.name,
      { ...base, policy_pack: v.policyPack, policy: v.policy, enforcement_level: v.enforcementLevel },
      1,
    );
  }

  return { counters: counters.deltas(), histograms };
}

/**
 * The `kind` label of an update kind: every preview kind (`Pupdate`, `Prefresh`, ... or
 * `preview`) is `preview`, as the telemetry conventions name it; other kinds as reported.
 */
export function kindLabel(kind: string): string {
  return isPreviewKind(kind) ? 'preview' : kind;
}

/**
 * One labels object per tuple of label values (the same tuple length for every call of one
 * instance), shared by every update's steps of that series. Forgets everything past
 * MAX_LABEL_SETS tuples, so it holds at most that many however many series come and go.
 */
class LabelSets {
  private readonly root = new Map<string, unknown>();
  private size = 0;

  get(values: readonly string[], make: () => Labels): Labels {
    let node = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i] as string) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(values[i] as string, (next = new Map()));
      node = next;
    }
    let labels = node.get(values[last] as string) as Labels | undefined;
    if (labels === undefined) {
      if (this.size >= MAX_LABEL_SETS) {
        this.root.clear();
        this.size = 0;
        return this.get(values, make);
      }
      node.set(values[last] as string, (labels = make()));
      this.size += 1;
    }
    return labels;
  }
}

const MAX_LABEL_SETS = 50_000;
/** Scope (see updateMetricDeltas), operation, resource type, result. */
const OPERATION_LABELS = new LabelSets();
/** Scope (see updateMetricDeltas), operation, resource type. */
const DURATION_LABELS = new LabelSets();

/** Sums increments per (name, labels) so the store gets one delta per series. */
class CounterSums {
  private readonly byName = new Map<string, Map<string, { name: string; labels: Labels; value: number }>>();
  private readonly order: { name: string; labels: Labels; value: number }[] = [];

  add(name: string, labels: Labels, value: number): void {
    let byKey = this.byName.get(name);
    if (byKey === undefined) this.byName.set(name, (byKey = new Map()));
    const key = labelsKey(labels);
    const existing = byKey.get(key);
    if (existing) existing.value += value;
    else {
      const delta = { name, labels, value };
      byKey.set(key, delta);
      this.order.push(delta);
    }
  }

  deltas(): CounterDelta[] {
    return this.order;
  }
}
