import type { CounterDelta, HistogramObservation, Labels, MetricDeltas } from '../domain/metric-delta.js';
import { labelsKey } from '../domain/metric-delta.js';
import type { StackRef } from '../domain/stack.js';
import type { PolicyViolation, ResourceOperation } from '../domain/trace.js';
import type { TerminalResult } from '../domain/update.js';
import { METRICS } from './definitions.js';

export interface UpdateDeltaInput {
  readonly stack: StackRef;
  readonly kind: string;
  readonly result: TerminalResult;
  /** Unix seconds. */
  readonly startTime: number;
  /** Unix seconds. */
  readonly endTime: number;
  readonly resourceChanges: Readonly<Record<string, number>>;
  readonly operations: readonly ResourceOperation[];
  readonly policyViolations: readonly PolicyViolation[];
  /** metrics.resourceOperationDurationByStack: add the stack label to the operation histogram. */
  readonly durationByStack: boolean;
}

/**
 * The increments one terminal update makes to the persisted pulumi_* counters and
 * histograms. Pure: the store applies the result in the transaction that marks the update
 * exported, which is what makes every update count exactly once.
 *
 * pulumi_update_failures_total counts result `failed` only, as the telemetry conventions
 * define it, so it always equals pulumi_updates_total{result="failed"}; a cancelled update
 * (told apart by its summary event) counts under result="cancelled".
 */
export function updateMetricDeltas(input: UpdateDeltaInput): MetricDeltas {
  const { stack, kind, result } = input;
  const base = { org: stack.org, project: stack.project, stack: stack.stack };
  const counters = new CounterSums();
  const histograms: HistogramObservation[] = [];

  counters.add(METRICS.updatesTotal.name, { ...base, kind, result }, 1);
  // Added with 0 for other results, so the series exists before the first failure and
  // increase() in Prometheus sees that first failure too.
  counters.add(METRICS.updateFailuresTotal.name, { ...base, kind }, result === 'failed' ? 1 : 0);
  histograms.push({
    name: METRICS.updateDurationSeconds.name,
    labels: { ...base, kind, result },
    buckets: METRICS.updateDurationSeconds.buckets,
    // Clock skew or a missing end time must not produce a negative duration.
    value: Math.max(0, input.endTime - input.startTime),
  });

  for (const operation of Object.keys(input.resourceChanges).sort()) {
    const n = input.resourceChanges[operation] ?? 0;
    if (Number.isFinite(n) && n > 0) {
      counters.add(METRICS.updateResourceChangesTotal.name, { ...base, kind, operation }, n);
    }
  }

  for (const op of input.operations) {
    counters.add(
      METRICS.resourceOperationsTotal.name,
      { ...base, operation: op.op, resource_type: op.resourceType, result: op.result },
      1,
    );
    // An interrupted step never finished, so it has no duration to observe.
    if (op.result === 'interrupted') continue;
    const labels: Record<string, string> = {
      org: stack.org,
      project: stack.project,
      operation: op.op,
      resource_type: op.resourceType,
    };
    if (input.durationByStack) labels['stack'] = stack.stack;
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

/** Sums increments per (name, labels) so the store gets one delta per series. */
class CounterSums {
  private readonly byKey = new Map<string, { name: string; labels: Labels; value: number }>();

  add(name: string, labels: Labels, value: number): void {
    const key = `${name}${labelsKey(labels)}`;
    const existing = this.byKey.get(key);
    if (existing) existing.value += value;
    else this.byKey.set(key, { name, labels, value });
  }

  deltas(): CounterDelta[] {
    return [...this.byKey.values()];
  }
}
