import type { EngineEvent, PolicyEvent, SummaryEvent } from '../domain/engine-event.js';
import type { AttributeValue, PolicyViolation, SpanEventRecord } from '../domain/trace.js';
import { StepTracker, type Step } from './step-pairing.js';
import { cleanMessage } from './text.js';

export type MutableAttributes = Record<string, AttributeValue>;

/** One resource step on its way to a span. */
export interface Node {
  readonly step: Step;
  failureMessage?: string;
  failureStatus?: number;
  parent?: Node;
  /** The parent can no longer change: the step has no parent URN, or its parent's step came before it. */
  parentSettled: boolean;
  keep: boolean;
  emitted: boolean;
  spanId: string;
  startMs: number;
  endMs: number;
  readonly events: SpanEventRecord[];
}

/** A diagnostic or policy violation waiting for its span (or the root). */
export interface PendingEvent {
  readonly target: Step | undefined;
  readonly timestamp: number;
  readonly name: string;
  readonly attributes: MutableAttributes;
}

/** What one pass over the engine events found. */
export interface EventScan {
  readonly tracker: StepTracker;
  /** One per resourcePreEvent, in stream order. */
  readonly nodes: Node[];
  readonly nodeOf: ReadonlyMap<Step, Node>;
  readonly pending: PendingEvent[];
  readonly eventCounts: Record<string, number>;
  readonly policyViolations: PolicyViolation[];
  readonly summary: SummaryEvent | undefined;
  readonly unmatchedTerminalEvents: number;
  /** Error diagnostics on a resource plus failed steps. */
  readonly resourceErrors: number;
  readonly mandatoryViolations: number;
  /** The last error diagnostic without a URN. */
  readonly updateError: string | undefined;
  /** First and last non-zero event timestamps (seconds), 0 when none. */
  readonly firstTs: number;
  readonly lastTs: number;
}

function fallbackFailureMessage(op: string, status: number): string {
  if (status === 1) return `${op} step failed (partial failure)`;
  if (status === 2) return `${op} step failed (resource state unknown)`;
  return `${op} step failed`;
}

function policyAttributes(e: PolicyEvent, redactText: (text: string) => string): MutableAttributes {
  const attributes: MutableAttributes = {
    'pulumi.policy.pack': e.policyPackName,
    'pulumi.policy.name': e.policyName,
    'pulumi.policy.enforcement_level': e.enforcementLevel,
    message: cleanMessage(e.message, redactText),
  };
  if (e.policyPackVersion) attributes['pulumi.policy.pack_version'] = e.policyPackVersion;
  if (e.severity) attributes['pulumi.policy.severity'] = e.severity;
  return attributes;
}

/**
 * Reads the events once: pairs steps, attaches failure messages, queues diagnostics and
 * policy violations for their spans, counts events by type and keeps the summary.
 */
export function scanEvents(events: readonly EngineEvent[], redactText: (text: string) => string): EventScan {
  const tracker = new StepTracker();
  const nodes: Node[] = [];
  const nodeOf = new Map<Step, Node>();
  const pending: PendingEvent[] = [];
  const eventCounts: Record<string, number> = {};
  const policyViolations: PolicyViolation[] = [];
  const lastErrorByUrn = new Map<string, { readonly index: number; readonly message: string }>();
  let summary: SummaryEvent | undefined;
  let unmatchedTerminalEvents = 0;
  let resourceErrors = 0;
  let mandatoryViolations = 0;
  let updateError: string | undefined;
  let firstTs = 0;
  let lastTs = 0;

  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    eventCounts[e.type] = (eventCounts[e.type] ?? 0) + 1;
    if (e.timestamp > 0) {
      if (firstTs === 0) firstTs = e.timestamp;
      if (e.timestamp > lastTs) lastTs = e.timestamp;
    }
    switch (e.type) {
      case 'resourcePreEvent': {
        const step = tracker.begin(e, i);
        const node: Node = { step, parentSettled: false, keep: false, emitted: false, spanId: '', startMs: 0, endMs: 0, events: [] };
        nodes.push(node);
        nodeOf.set(step, node);
        break;
      }
      case 'resOutputsEvent':
      case 'resOpFailedEvent': {
        const step = tracker.finish(e, i);
        if (!step) {
          unmatchedTerminalEvents += 1;
          break;
        }
        if (e.type === 'resOpFailedEvent') {
          const node = nodeOf.get(step)!;
          const diag = lastErrorByUrn.get(e.metadata.urn);
          node.failureStatus = e.status;
          node.failureMessage =
            diag && diag.index > step.index && diag.message ? diag.message : fallbackFailureMessage(step.pre.metadata.op, e.status);
          resourceErrors += 1;
        }
        break;
      }
      case 'diagnosticEvent': {
        const message = cleanMessage(e.message, redactText);
        if (e.severity === 'error') {
          if (e.urn) {
            lastErrorByUrn.set(e.urn, { index: i, message });
            resourceErrors += 1;
          } else {
            updateError = message;
          }
        }
        pending.push({
          target: e.urn ? tracker.stepFor(e.urn) : undefined,
          timestamp: e.timestamp,
          name: 'diagnostic',
          attributes: { severity: e.severity, message },
        });
        break;
      }
      case 'policyEvent': {
        policyViolations.push({ policyPack: e.policyPackName, policy: e.policyName, enforcementLevel: e.enforcementLevel });
        if (e.enforcementLevel === 'mandatory') mandatoryViolations += 1;
        pending.push({
          target: e.resourceUrn ? tracker.stepFor(e.resourceUrn) : undefined,
          timestamp: e.timestamp,
          name: 'policy_violation',
          attributes: policyAttributes(e, redactText),
        });
        break;
      }
      case 'summaryEvent':
        summary = e;
        break;
      default:
        break;
    }
  }
  return {
    tracker,
    nodes,
    nodeOf,
    pending,
    eventCounts,
    policyViolations,
    summary,
    unmatchedTerminalEvents,
    resourceErrors,
    mandatoryViolations,
    updateError,
    firstTs,
    lastTs,
  };
}
