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

  // The steps of an update fall into a few series: each series gets one labels object, so
  // its labels are keyed once (labelsKey remembers them) instead of once per step.
  const operationLabels = new LabelSets();
  const durationLabels = new LabelSets();
  const org = { org: stack.org };
  for (const op of input.operations) {
    counters.add(
      METRICS.resourceOperationsTotal.name,
      operationLabels.get(op.op, op.resourceType, op.result, () => ({
        ...(detail.resourceOperationsByStack ? base : project),
        operation: op.op,
        resource_type: op.resourceType,
        result: op.result,
      })),
      1,
    );
    // An interrupted step never finished, so it has no duration to observe.
    if (op.result === 'interrupted') continue;
    const labels = durationLabels.get(op.op, op.resourceType, '', () => ({
      ...(detail.resourceOperationDurationByStack ? base : org),
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

/** One labels object per (a, b, c) of one update's steps. */
class LabelSets {
  private readonly byA = new Map<string, Map<string, Map<string, Labels>>>();

  get(a: string, b: string, c: string, make: () => Labels): Labels {
    let byB = this.byA.get(a);
    if (byB === undefined) this.byA.set(a, (byB = new Map()));
    let byC = byB.get(b);
    if (byC === undefined) byB.set(b, (byC = new Map()));
    let labels = byC.get(c);
    if (labels === undefined) byC.set(c, (labels = make()));
    return labels;
  }
}

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
