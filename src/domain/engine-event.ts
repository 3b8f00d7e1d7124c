/**
 * Engine events as the rest of the exporter sees them. The wire format
 * (shared/docs/pulumi-api.md section 3) is parsed into these in src/pulumi/ only.
 * Resource inputs, outputs and config values are dropped at that boundary on purpose:
 * nothing downstream can leak what it never receives.
 */

export interface StepState {
  readonly type: string;
  readonly urn: string;
  readonly custom: boolean;
  readonly delete: boolean;
  readonly id: string;
  readonly parent: string;
  readonly provider: string;
  readonly external: boolean;
}

export interface StepMetadata {
  readonly op: string;
  readonly urn: string;
  readonly type: string;
  readonly old: StepState | null;
  readonly new: StepState | null;
  /** Property names forcing replacement. */
  readonly keys: readonly string[];
  /** Changed top-level property names (never values). */
  readonly diffs: readonly string[];
  /** Property paths of the detailed diff (never values); empty when absent. */
  readonly detailedDiffPaths: readonly string[];
  readonly logical: boolean;
  readonly provider: string;
}

interface Base {
  /** Unix seconds as stamped by the service (coarse; see shared pulumi-api.md 6.1). */
  readonly timestamp: number;
}

export interface ResourcePreEvent extends Base {
  readonly type: 'resourcePreEvent';
  readonly metadata: StepMetadata;
  readonly planning: boolean;
}

export interface ResOutputsEvent extends Base {
  readonly type: 'resOutputsEvent';
  readonly metadata: StepMetadata;
  readonly planning: boolean;
}

export interface ResOpFailedEvent extends Base {
  readonly type: 'resOpFailedEvent';
  readonly metadata: StepMetadata;
  /** 0 OK, 1 partial failure, 2 unknown. */
  readonly status: number;
  readonly steps: number;
}

export interface DiagnosticEvent extends Base {
  readonly type: 'diagnosticEvent';
  readonly urn?: string;
  readonly prefix?: string;
  readonly message: string;
  /** debug, info, info#err, warning, error */
  readonly severity: string;
  readonly ephemeral: boolean;
}

export interface PolicyEvent extends Base {
  readonly type: 'policyEvent';
  readonly resourceUrn?: string;
  readonly message: string;
  readonly policyName: string;
  readonly policyPackName: string;
  readonly policyPackVersion: string;
  readonly enforcementLevel: string;
  readonly severity?: string;
}

export interface SummaryEvent extends Base {
  readonly type: 'summaryEvent';
  readonly maybeCorrupt: boolean;
  readonly durationSeconds: number;
  readonly resourceChanges: Readonly<Record<string, number>>;
  readonly policyPacks: Readonly<Record<string, string>>;
  readonly isPreview?: boolean;
  /** succeeded, failed, canceled; absent on older CLIs. */
  readonly result?: string;
}

export interface PreludeEvent extends Base {
  readonly type: 'preludeEvent';
}

/** Known payload types the exporter reads but does not turn into spans. */
export const PASSIVE_EVENT_TYPES = [
  'cancelEvent',
  'stdoutEvent',
  'policyRemediationEvent',
  'policyLoadEvent',
  'policyAnalyzeSummaryEvent',
  'policyRemediateSummaryEvent',
  'policyAnalyzeStackSummaryEvent',
  'startDebuggingEvent',
  'progressEvent',
  'errorEvent',
] as const;
export type PassiveEventType = (typeof PASSIVE_EVENT_TYPES)[number];

/** The engine-event payload keys (wire type names) the exporter understands, in the order they are looked for. */
export const ENGINE_EVENT_WIRE_TYPES = [
  'resourcePreEvent',
  'resOutputsEvent',
  'resOpFailedEvent',
  'diagnosticEvent',
  'policyEvent',
  'summaryEvent',
  'preludeEvent',
  ...PASSIVE_EVENT_TYPES,
] as const;

export interface PassiveEvent extends Base {
  readonly type: PassiveEventType;
}

/** An event whose payload key the exporter does not know: kept, counted, never fatal. */
export interface UnknownEvent extends Base {
  readonly type: 'unknown';
  /** The payload key or `type` discriminator as received. */
  readonly wireType: string;
}

export type EngineEvent =
  | ResourcePreEvent
  | ResOutputsEvent
  | ResOpFailedEvent
  | DiagnosticEvent
  | PolicyEvent
  | SummaryEvent
  | PreludeEvent
  | PassiveEvent
  | UnknownEvent;

export type EngineEventType = EngineEvent['type'];
