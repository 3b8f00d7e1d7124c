import type { EngineEvent, StepMetadata, SummaryEvent } from '../domain/engine-event.js';
import type { PolicyViolation, ResourceOperation, SpanEventRecord, SpanRecord, TraceRecord } from '../domain/trace.js';
import { isTerminal, terminalResult, type TerminalResult, type UpdateInfo } from '../domain/update.js';
import { scanEvents, type EventScan, type MutableAttributes, type Node } from './scan-events.js';
import type { StepTracker, Step } from './step-pairing.js';
import { limitAttributes, resourceNameOf, truncateText } from './text.js';
import { rootSpanIdFor, stepSpanIdFor, traceIdFor } from './trace-ids.js';
import { consoleUrlOf, environmentAttributes, isPreviewKind } from './update-attributes.js';

export interface ConversionOptions {
  /** OTel resource attribute service.name. */
  readonly serviceName: string;
  /** Emit every `same` step as a span, not only those that parent a kept span. */
  readonly keepSameSteps: boolean;
  /** Upper bound on spans per trace, root included. */
  readonly maxSpansPerTrace: number;
  /** Upper bound on the length of every string attribute value and status message. */
  readonly maxAttributeLength: number;
  /** Pulumi console base URL, e.g. https://app.pulumi.com. */
  readonly consoleUrl: string;
  /**
   * Removes secrets from diagnostic and policy message text (the app passes the process-wide
   * registry from src/secrets.ts; injected so conversion stays a pure function). Default: none.
   */
  readonly redact?: (text: string) => string;
}

export interface ConversionResult {
  readonly trace: TraceRecord;
  /** Every resource step (same steps included), in the order of their pre events. */
  readonly operations: ResourceOperation[];
  readonly policyViolations: PolicyViolation[];
  /** Events read, by payload type; unknown payloads under `unknown`. */
  readonly eventCounts: Record<string, number>;
  /** The last summaryEvent, when the stream has one. */
  readonly summary?: SummaryEvent;
  readonly result: TerminalResult;
  /** Outputs/failed events that matched no open step (a component's second outputs event in a preview). */
  readonly unmatchedTerminalEvents: number;
  /**
   * Step spans that no later event of the stream can change: the step finished, its parent
   * is known, and it is early enough in the stream that the span cap can never cut it. For
   * an update still running these are the spans that may be sent before it ends
   * (src/sync/follow-update.ts); each is exactly the span the finished update's trace holds.
   */
  readonly finalSpanIds: ReadonlySet<string>;
}

const PIPELINE_RESULT: Readonly<Record<TerminalResult, string>> = {
  succeeded: 'success',
  failed: 'failure',
  cancelled: 'cancellation',
};

// resOpFailedEvent.status: 0 the step failed cleanly, 1 partial failure (resource exists, e.g. init errors), 2 unknown.
const FAILURE_STATE = ['clean', 'partial', 'unknown'] as const;

/**
 * The parent URN of a step: `new.parent` whenever the step has new state (empty means top
 * level, even when `old.parent` names a component the resource was moved out of), and
 * `old.parent` only without new state (deletes).
 */
function parentUrnOf(m: StepMetadata): string {
  return m.new ? m.new.parent : (m.old?.parent ?? '');
}

function unique(...lists: (readonly string[] | undefined)[]): string[] {
  const seen = new Set<string>();
  for (const list of lists) for (const v of list ?? []) seen.add(v);
  return [...seen];
}

/**
 * Converts one update and its engine events into a trace (one root span for the update,
 * one span per kept resource step), the per-step operations and the policy violations.
 * Pure and total: unknown event types, missing optional fields and unmatched terminal
 * events are counted, never thrown. Span layout: shared telemetry-conventions.md "Traces" and
 * docs/traces.md.
 */
export function convertUpdate(
  update: UpdateInfo,
  events: readonly EngineEvent[],
  options: ConversionOptions,
): ConversionResult {
  const scan = scanEvents(events, options.redact ?? ((text: string) => text));
  const window = timeWindow(update, scan);
  const traceId = traceIdFor(update.stack, update.updateId);
  const rootSpanId = rootSpanIdFor(traceId);
  const layout = layOutSpans(scan, window, traceId, rootSpanId, options);
  const { root, result } = rootSpan(update, scan, window, { traceId, rootSpanId, events: layout.rootEvents, droppedSpans: layout.droppedSpans }, options);

  const operations: ResourceOperation[] = scan.nodes.map((node) => {
    const { pre, terminal } = node.step;
    const outcome = !terminal ? 'interrupted' : terminal.type === 'resOpFailedEvent' ? 'failed' : 'succeeded';
    return {
      urn: pre.metadata.urn,
      op: pre.metadata.op,
      resourceType: pre.metadata.type,
      result: outcome,
      durationSeconds: outcome === 'interrupted' ? 0 : (node.endMs - node.startMs) / 1000,
    };
  });

  const { org, project, stack } = update.stack;
  return {
    trace: {
      traceId,
      resource: {
        'service.name': options.serviceName,
        'pulumi.org': org,
        'pulumi.project': project,
        'pulumi.stack': stack,
      },
      spans: [root, ...layout.stepSpans],
      droppedSpans: layout.droppedSpans,
    },
    operations,
    policyViolations: scan.policyViolations,
    eventCounts: scan.eventCounts,
    ...(scan.summary ? { summary: scan.summary } : {}),
    result,
    unmatchedTerminalEvents: scan.unmatchedTerminalEvents,
    finalSpanIds: layout.finalSpanIds,
  };
}

/** The update's time window in ms: the service's start/end; an update still running ends at its last event. */
interface TimeWindow {
  readonly startMs: number;
  readonly endMs: number;
  /** Seconds to ms, clamped into the window. */
  clamp(seconds: number): number;
}

function timeWindow(update: UpdateInfo, scan: EventScan): TimeWindow {
  const startMs = (update.startTime > 0 ? update.startTime : scan.firstTs) * 1000;
  const rawEnd = update.endTime !== undefined && update.endTime > 0 ? update.endTime : scan.lastTs;
  const endMs = Math.max(rawEnd * 1000, startMs);
  return { startMs, endMs, clamp: (seconds) => Math.min(Math.max(seconds * 1000, startMs), endMs) };
}

interface SpanLayout {
  readonly stepSpans: SpanRecord[];
  readonly rootEvents: SpanEventRecord[];
  readonly droppedSpans: number;
  readonly finalSpanIds: ReadonlySet<string>;
}

/** Times and parents every step, keeps the spans worth emitting (up to the cap) and places the span events. */
function layOutSpans(scan: EventScan, window: TimeWindow, traceId: string, rootSpanId: string, options: ConversionOptions): SpanLayout {
  const { nodes, nodeOf } = scan;
  const { clamp } = window;
  for (const node of nodes) {
    const { pre, terminal } = node.step;
    node.startMs = clamp(pre.timestamp);
    node.endMs = terminal ? Math.max(clamp(terminal.timestamp), node.startMs) : window.endMs;
  }

  resolveParents(nodes, scan.tracker, nodeOf);

  // `same` steps only survive as ancestors of kept spans (component structure), unless asked to keep all.
  for (const node of nodes) {
    if (options.keepSameSteps || node.step.pre.metadata.op !== 'same') {
      let n: Node | undefined = node;
      while (n && !n.keep) {
        n.keep = true;
        n = n.parent;
      }
    }
  }

  const kept = nodes.filter((n) => n.keep);
  const maxSteps = Math.max(0, Math.floor(options.maxSpansPerTrace) - 1);
  const emitted = kept.length > maxSteps ? kept.slice(0, maxSteps) : kept;
  for (const node of emitted) {
    node.emitted = true;
    const m = node.step.pre.metadata;
    node.spanId = stepSpanIdFor(traceId, m.urn, m.op, node.step.index);
  }

  const rootEvents: SpanEventRecord[] = [];
  for (const p of scan.pending) {
    const node = p.target ? nodeOf.get(p.target) : undefined;
    const within = node?.emitted ? node : undefined;
    const lo = within ? within.startMs : window.startMs;
    const hi = within ? within.endMs : window.endMs;
    const record: SpanEventRecord = {
      name: p.name,
      timeMs: Math.min(Math.max(clamp(p.timestamp), lo), hi),
      attributes: limitAttributes(p.attributes, options.maxAttributeLength),
    };
    (within ? within.events : rootEvents).push(record);
  }

  const stepSpans: SpanRecord[] = emitted.map((node) => {
    let parent = node.parent;
    while (parent && !parent.emitted) parent = parent.parent;
    return stepSpan(node, traceId, parent ? parent.spanId : rootSpanId, options.maxAttributeLength);
  });
  // Later events only add steps after these and keep earlier `same` steps, so a step among
  // the first maxSteps of the stream stays under the cap (and so does its parent).
  const finalSpanIds = new Set<string>();
  nodes.forEach((node, position) => {
    if (node.emitted && node.step.terminal !== undefined && node.parentSettled && position < maxSteps) finalSpanIds.add(node.spanId);
  });
  return { stepSpans, rootEvents, droppedSpans: kept.length - emitted.length, finalSpanIds };
}

interface RootIds {
  readonly traceId: string;
  readonly rootSpanId: string;
  readonly events: SpanEventRecord[];
  readonly droppedSpans: number;
}

/** The update's root span and its terminal result. */
function rootSpan(
  update: UpdateInfo,
  scan: EventScan,
  window: TimeWindow,
  ids: RootIds,
  options: ConversionOptions,
): { root: SpanRecord; result: TerminalResult } {
  const { summary } = scan;
  const maxLen = options.maxAttributeLength;
  const result = terminalResult(update.result, summary?.result);
  const finished = isTerminal(update.result) || summary?.result !== undefined;
  const preview = isPreviewKind(update.kind) || summary?.isPreview === true;
  const { project, stack } = update.stack;

  const rootAttributes: MutableAttributes = {
    'cicd.pipeline.name': `${project}/${stack}`,
    'cicd.pipeline.run.id': update.updateId,
    'cicd.pipeline.run.url.full': consoleUrlOf(update, options.consoleUrl, preview),
  };
  if (finished) rootAttributes['cicd.pipeline.result'] = PIPELINE_RESULT[result];
  if (finished && result === 'failed') {
    rootAttributes['error.type'] =
      scan.resourceErrors > 0 ? 'resource_operation_failed' : scan.mandatoryViolations > 0 ? 'policy_violation' : 'update_failed';
  }
  rootAttributes['pulumi.update.kind'] = update.kind;
  rootAttributes['pulumi.update.version'] = update.version;
  rootAttributes['pulumi.update.result'] = update.result;
  if (update.message.length > 0) rootAttributes['pulumi.update.message'] = update.message;
  const requestedBy = update.requestedBy?.githubLogin || update.requestedBy?.name;
  if (requestedBy) rootAttributes['pulumi.update.requested_by'] = requestedBy;
  const changes = changesOf(update, summary);
  for (const [op, count] of Object.entries(changes)) rootAttributes[`pulumi.update.resource_changes.${op}`] = count;
  if (summary?.maybeCorrupt) rootAttributes['pulumi.update.maybe_corrupt'] = true;
  Object.assign(rootAttributes, environmentAttributes(update.environment));
  if (ids.droppedSpans > 0) rootAttributes['pulumi.trace.dropped_spans'] = ids.droppedSpans;

  const root: SpanRecord = {
    traceId: ids.traceId,
    spanId: ids.rootSpanId,
    name: `${update.kind} ${project}/${stack}`,
    kind: 'server',
    startTimeMs: window.startMs,
    endTimeMs: window.endMs,
    attributes: limitAttributes(rootAttributes, maxLen),
    status:
      finished && result === 'failed'
        ? { code: 'error', message: truncateText(scan.updateError || 'update failed', maxLen) }
        : { code: 'unset' },
    events: ids.events,
  };
  return { root, result };
}

/** The history's resource changes, else the summary's. */
function changesOf(update: UpdateInfo, summary: SummaryEvent | undefined): Readonly<Record<string, number>> {
  return Object.keys(update.resourceChanges).length > 0 ? update.resourceChanges : (summary?.resourceChanges ?? {});
}

/**
 * Parent = the step of the parent component. Normally the parent registered first, so the
 * newest parent step before the child is used; when the parent's only steps come later
 * (deletes run children first) the first of them is used unless that would close a cycle.
 */
function resolveParents(nodes: readonly Node[], tracker: StepTracker, nodeOf: ReadonlyMap<Step, Node>): void {
  const later: [Node, Node][] = [];
  for (const node of nodes) {
    const m = node.step.pre.metadata;
    const parentUrn = parentUrnOf(m);
    if (!parentUrn || parentUrn === m.urn) {
      node.parentSettled = true;
      continue;
    }
    const candidates = tracker.stepsOf(parentUrn);
    let before: Step | undefined;
    for (let k = candidates.length - 1; k >= 0; k--) {
      const c = candidates[k]!;
      if (c.index < node.step.index) {
        before = c;
        break;
      }
    }
    if (before) {
      node.parent = nodeOf.get(before);
      node.parentSettled = true;
    } else if (candidates[0]) later.push([node, nodeOf.get(candidates[0])!]);
  }
  for (const [node, candidate] of later) {
    let n: Node | undefined = candidate;
    while (n && n !== node) n = n.parent;
    if (!n) node.parent = candidate;
  }
}

function stepSpan(node: Node, traceId: string, parentSpanId: string, maxLen: number): SpanRecord {
  const { pre, terminal } = node.step;
  const m = pre.metadata;
  const name = resourceNameOf(m.urn);
  const state = m.new ?? m.old;
  const attributes: MutableAttributes = {
    'pulumi.resource.urn': m.urn,
    'pulumi.resource.type': m.type,
    'pulumi.resource.name': name,
    'pulumi.resource.operation': m.op,
    'pulumi.resource.custom': state?.custom ?? false,
  };
  if (m.provider) attributes['pulumi.resource.provider'] = m.provider;
  const diffs = unique(m.diffs, terminal?.metadata.diffs);
  if (diffs.length > 0) attributes['pulumi.resource.diffs'] = diffs;
  const keys = unique(m.keys, terminal?.metadata.keys);
  if (keys.length > 0) attributes['pulumi.resource.replace_keys'] = keys;
  attributes['cicd.pipeline.task.name'] = name;
  if (m.op === 'refresh' && terminal?.type === 'resOutputsEvent') {
    attributes['pulumi.resource.refresh_result'] = terminal.metadata.op;
  }

  let status: SpanRecord['status'] = { code: 'unset' };
  if (!terminal) {
    attributes['pulumi.resource.interrupted'] = true;
  } else if (terminal.type === 'resOpFailedEvent') {
    attributes['cicd.pipeline.task.run.result'] = 'failure';
    const s = node.failureStatus ?? 0;
    attributes['pulumi.resource.failure_state'] = FAILURE_STATE[s] ?? String(s);
    status = { code: 'error', message: truncateText(node.failureMessage ?? `${m.op} step failed`, maxLen) };
  } else {
    attributes['cicd.pipeline.task.run.result'] = 'success';
  }

  return {
    traceId,
    spanId: node.spanId,
    parentSpanId,
    name: `${m.op} ${m.type}`,
    kind: 'internal',
    startTimeMs: node.startMs,
    endTimeMs: node.endMs,
    attributes: limitAttributes(attributes, maxLen),
    status,
    events: node.events,
  };
}
