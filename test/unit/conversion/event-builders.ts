import type { ConversionOptions } from '../../../src/conversion/convert-update.js';
import type {
  DiagnosticEvent,
  PolicyEvent,
  ResOpFailedEvent,
  ResOutputsEvent,
  ResourcePreEvent,
  StepMetadata,
  SummaryEvent,
} from '../../../src/domain/engine-event.js';
import type { UpdateInfo } from '../../../src/domain/update.js';

/* Small builders of domain engine events for table tests. */

export const T0 = 1_700_000_000;

export const OPTIONS: ConversionOptions = {
  serviceName: 'pulumi',
  keepSameSteps: false,
  maxSpansPerTrace: 1000,
  maxAttributeLength: 256,
  consoleUrl: 'https://app.pulumi.com',
};

export function urn(name: string, type = 'aws:s3/bucket:Bucket', parentTypes = ''): string {
  return `urn:pulumi:dev::proj::${parentTypes}${type}::${name}`;
}

export const STACK_URN = urn('proj-dev', 'pulumi:pulumi:Stack');

export function update(overrides: Partial<UpdateInfo> = {}): UpdateInfo {
  return {
    stack: { org: 'acme', project: 'proj', stack: 'dev' },
    updateId: 'u-1',
    kind: 'update',
    version: 42,
    result: 'succeeded',
    startTime: T0,
    endTime: T0 + 100,
    message: 'deploy',
    environment: {},
    resourceChanges: {},
    ...overrides,
  };
}

export interface StepOptions {
  readonly type?: string;
  readonly parent?: string;
  /** The parent in the old state when it differs from `parent` (a resource moved by an alias, a refresh). */
  readonly oldParent?: string;
  readonly custom?: boolean;
  readonly diffs?: readonly string[];
  readonly keys?: readonly string[];
  readonly provider?: string;
}

export function metadata(op: string, u: string, o: StepOptions = {}): StepMetadata {
  const type = o.type ?? u.split('::')[2]?.split('$').pop() ?? 'aws:s3/bucket:Bucket';
  const state = {
    type,
    urn: u,
    custom: o.custom ?? true,
    delete: false,
    id: '',
    parent: o.parent ?? STACK_URN,
    provider: o.provider ?? '',
    external: false,
  };
  const deleting = op === 'delete' || op === 'delete-replaced' || op === 'discard';
  return {
    op,
    urn: u,
    type,
    old: op === 'create' ? null : o.oldParent === undefined ? state : { ...state, parent: o.oldParent },
    new: deleting ? null : state,
    keys: o.keys ?? [],
    diffs: o.diffs ?? [],
    detailedDiffPaths: [],
    logical: true,
    provider: o.provider ?? '',
  };
}

export function pre(op: string, u: string, t = T0, o: StepOptions = {}): ResourcePreEvent {
  return { type: 'resourcePreEvent', timestamp: t, metadata: metadata(op, u, o), planning: false };
}

export function outputs(op: string, u: string, t = T0, o: StepOptions = {}): ResOutputsEvent {
  return { type: 'resOutputsEvent', timestamp: t, metadata: metadata(op, u, o), planning: false };
}

export function failed(op: string, u: string, t = T0, status = 0, o: StepOptions = {}): ResOpFailedEvent {
  return { type: 'resOpFailedEvent', timestamp: t, metadata: metadata(op, u, o), status, steps: 0 };
}

export function diag(message: string, u?: string, severity = 'error', t = T0): DiagnosticEvent {
  return { type: 'diagnosticEvent', timestamp: t, message, severity, ephemeral: false, ...(u ? { urn: u } : {}) };
}

export function policy(name: string, level: string, u?: string, t = T0): PolicyEvent {
  return {
    type: 'policyEvent',
    timestamp: t,
    message: `<{%fg 1%}>${name} violated<{%reset%}>\n`,
    policyName: name,
    policyPackName: 'pack',
    policyPackVersion: '1.0.0',
    enforcementLevel: level,
    ...(u ? { resourceUrn: u } : {}),
  };
}

export function summary(result?: string, overrides: Partial<SummaryEvent> = {}): SummaryEvent {
  return {
    type: 'summaryEvent',
    timestamp: T0,
    maybeCorrupt: false,
    durationSeconds: 1,
    resourceChanges: {},
    policyPacks: {},
    ...(result ? { result } : {}),
    ...overrides,
  };
}

/** A plain step: pre then outputs. */
export function step(op: string, u: string, start = T0, end = start, o: StepOptions = {}): [ResourcePreEvent, ResOutputsEvent] {
  return [pre(op, u, start, o), outputs(op, u, end, o)];
}
