import type { Prng } from './prng.js';

/**
 * The simulator's internal data model: stacks, their deployed state, and the updates the
 * generator planned for them (each with its full engine-event stream).
 */

/** One engine event exactly as `GET .../events` serves it: `timestamp`, `type` and the payload under `type`. */
export type WireEvent = { readonly timestamp: number; readonly type: string } & Readonly<Record<string, unknown>>;

export type ResourceRole = 'stack' | 'provider' | 'component' | 'resource';

/** A resource of a program, or of a stack's deployed state. Replaced, never mutated. */
export interface SimResource {
  readonly urn: string;
  readonly name: string;
  readonly type: string;
  readonly role: ResourceRole;
  /** `$`-joined type chain used in children's URNs (excludes the root stack). */
  readonly typeChain: string;
  /** "" for the stack and providers. */
  readonly parentUrn: string;
  /** `<provider-urn>::<provider-id>`; "" for components, the stack and providers. */
  readonly providerRef: string;
  /** Key into RESOURCE_TYPES for custom resources other than providers. */
  readonly specKey?: string;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly outputs: Readonly<Record<string, unknown>>;
  /** Provider ID; "" in programs and for components. */
  readonly id: string;
  /** Components only: whether the program calls registerOutputs. */
  readonly registersOutputs: boolean;
  readonly deleteBeforeReplace: boolean;
}

export interface StackState {
  /** In registration order. */
  readonly resources: ReadonlyMap<string, SimResource>;
  /** Old copies left behind by create-before-delete replacements whose delete did not run. */
  readonly pendingDeletes: readonly SimResource[];
}

export type PlanKind = 'update' | 'refresh' | 'destroy';
export type PlannedResult = 'succeeded' | 'failed' | 'cancelled';
/** How a failed update fails: a provider error on a step, a mandatory policy, or the program itself. */
export type FailureMode = 'resource' | 'policy' | 'program';

export interface OperationRecord {
  readonly op: string;
  readonly type: string;
  readonly result: 'succeeded' | 'failed' | 'interrupted';
}

export interface ViolationRecord {
  readonly policyPack: string;
  readonly policy: string;
  readonly enforcementLevel: string;
}

export interface ConfigValue {
  readonly string: string;
  readonly secret: boolean;
  readonly object: boolean;
}

export interface UserInfo {
  readonly name: string;
  readonly githubLogin: string;
  readonly avatarUrl: string;
  readonly email?: string;
}

export interface SimUpdate {
  readonly updateId: string;
  /** The kind as the service reports it: update/refresh/destroy, or Pupdate/Prefresh/Pdestroy/preview for previews. */
  readonly kind: string;
  readonly isPreview: boolean;
  /** Version produced (updates) or previewed against (previews). */
  readonly version: number;
  readonly startTime: number;
  /** Planned end; served only once the update is complete. */
  readonly endTime: number;
  /** The outcome the summary event reports once complete. */
  readonly result: PlannedResult;
  readonly message: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly config: Readonly<Record<string, ConfigValue>>;
  readonly requestedBy: UserInfo;
  readonly githubCommitInfo?: Readonly<Record<string, unknown>>;
  readonly policyPacks?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** Non-zero counts only (shared pulumi-api.md 4.4), exactly what the summary event carries. */
  readonly resourceChanges: Readonly<Record<string, number>>;
  /** Resources in the stack after the update; undefined for previews. */
  readonly resourceCount?: number;
  readonly events: readonly WireEvent[];
  /** null for fixture updates. */
  readonly operations: readonly OperationRecord[] | null;
  readonly policyViolations: readonly ViolationRecord[];
  /** How many of `events` are currently served (live updates grow this). */
  visible: number;
  complete: boolean;
}

export interface StackContext {
  readonly repoOwner: string;
  readonly repoName: string;
  readonly region: string;
  readonly users: readonly UserInfo[];
  readonly ciBot: UserInfo;
  readonly policyPack: boolean;
  readonly config: Readonly<Record<string, ConfigValue>>;
  /** The config as the prelude event shows it (secrets blinded). */
  readonly preludeConfig: Readonly<Record<string, string>>;
}

/** What a stack's program generator keeps between updates (program.ts builds one per stack). */
export interface ProgramBuilder {
  readonly project: string;
  readonly stack: string;
  readonly region: string;
  readonly rng: Prng;
  /** Provider references, fixed for the stack's life. */
  readonly awsProviderRef: string;
  readonly randomProviderRef: string;
  /** A new serial number: keeps generated names and edited values unique per stack. */
  next(): number;
}

export interface SimStack {
  readonly org: string;
  readonly project: string;
  readonly stack: string;
  readonly id: string;
  readonly isFixture: boolean;
  readonly context: StackContext;
  readonly tags: Readonly<Record<string, string>>;
  /** Oldest first. */
  readonly updates: SimUpdate[];
  readonly previews: SimUpdate[];
  program: readonly SimResource[];
  state: StackState;
  /** Generated stacks only: the stack's own random stream and program builder, for new updates. */
  readonly rng?: Prng;
  readonly builder?: ProgramBuilder;
  /** Roughly how many custom resources the program keeps. */
  readonly targetSize?: number;
}

/** What planUpdate needs to plan one update (or preview) of a stack. */
export interface PlanInput {
  readonly project: string;
  readonly stack: string;
  readonly kind: PlanKind;
  readonly preview: boolean;
  readonly result: PlannedResult;
  readonly failureMode?: FailureMode;
  readonly program: readonly SimResource[];
  readonly state: StackState;
  readonly rng: Prng;
  readonly startTime: number;
  readonly policyPack: boolean;
  /** `fast` keeps every step to a couple of seconds (live mode). */
  readonly timing: 'normal' | 'fast';
  readonly preludeConfig: Readonly<Record<string, string>>;
  /** Refresh: make at least one resource drift. */
  readonly forceDrift?: boolean;
  /** Cancellations and program failures strike no earlier than a third of the way in (live updates). */
  readonly lateStops?: boolean;
  /** Serial numbers for drift values. */
  readonly serial: () => number;
  readonly buildLabel: string;
}

export interface PlannedUpdate {
  readonly events: WireEvent[];
  readonly endTime: number;
  readonly operations: OperationRecord[];
  readonly policyViolations: ViolationRecord[];
  /** Non-zero counts only. */
  readonly resourceChanges: Record<string, number>;
  /** The state after the update (unchanged for previews). */
  readonly state: StackState;
  readonly maybeCorrupt: boolean;
}
