import { MANDATORY_POLICY, POLICY_PACK, PROGRAM_OUTPUT_LINES, RESOURCE_TYPES, STDERR_LINES } from './catalog.js';
import { mutateValue } from './program.js';
import type { Prng } from './prng.js';
import type {
  FailureMode,
  OperationRecord,
  PlanKind,
  PlannedResult,
  SimResource,
  StackState,
  ViolationRecord,
  WireEvent,
} from './sim-model.js';

/**
 * Plans one update (or preview) of a stack and produces its engine-event stream by a small
 * discrete-event simulation: steps start when their dependencies are done (up to a
 * parallelism limit), take time, and finish with outputs or a failure. Every event rule of
 * pulumi-api.md section 6 is reproduced here; the plan also records, independently of the
 * events, what the truth of the update is (operations, counted changes, violations).
 */

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

type Snapshot = Record<string, unknown>;

interface Step {
  readonly idx: number;
  readonly op: string;
  /** The resource as the step leaves it (program version), or as it was (deletes). */
  readonly res: SimResource;
  readonly custom: boolean;
  readonly old: Snapshot | null;
  readonly newPre: Snapshot | null;
  readonly newPost: Snapshot | null;
  readonly oldPost?: Snapshot | null;
  readonly keys?: string[];
  readonly diffs?: string[];
  readonly detailedDiff: Record<string, unknown> | null;
  readonly logical: boolean;
  /** Op on the terminal event (differs for refresh). */
  readonly outputsOp: string;
  readonly duration: number;
  readonly deps: number[];
  /** The resourceChanges key this step counts under when it completes; undefined = never counted. */
  readonly countAs?: string;
  /** Deletes and delete-replaced run after every create/update (phase 2). */
  readonly phase2: boolean;
  /** Component steps finish at once, with no outputs (except deletes and previews). */
  readonly instant: boolean;
  apply(state: MutableState): void;
  // Simulation state.
  started: boolean;
  done: boolean;
  failed: boolean;
  blocked: boolean;
  terminal: 'outputs' | 'failed' | null;
  /** Position of the step's resourcePreEvent in the stream. */
  preIndex?: number;
}

interface MutableState {
  resources: Map<string, SimResource>;
  pending: SimResource[];
}

const COUNTED_OPS = new Set(['same', 'create', 'update', 'delete', 'replace', 'import', 'discard']);
const PARALLELISM = 8;

function snapshot(r: SimResource, over: { id?: string; outputs?: Readonly<Record<string, unknown>>; delete?: boolean } = {}): Snapshot {
  const custom = r.role === 'resource' || r.role === 'provider';
  return {
    type: r.type,
    urn: r.urn,
    ...(custom ? { custom: true } : {}),
    ...(over.delete ? { delete: true } : {}),
    id: over.id ?? r.id,
    parent: r.parentUrn,
    inputs: r.inputs,
    outputs: over.outputs ?? r.outputs,
    provider: r.providerRef,
  };
}

/** The deployed copy of a program resource: a provider ID and outputs. */
export function deploy(r: SimResource, rng: Prng): SimResource {
  if (r.role === 'stack' || r.role === 'component') return { ...r, id: '', outputs: {} };
  if (r.role === 'provider') return { ...r, outputs: { ...r.inputs } };
  const spec = RESOURCE_TYPES[r.specKey ?? ''];
  if (!spec) throw new Error(`no spec for ${r.type}`);
  const named = r.inputs['bucket'] ?? r.inputs['identifier'] ?? r.inputs['name'];
  const physical = typeof named === 'string' && !named.startsWith('/') ? named : `${r.name}-${rng.hex(7)}`;
  const outputs = spec.outputs(physical, r.inputs, rng);
  const id = typeof outputs['id'] === 'string' ? outputs['id'] : physical;
  return { ...r, id, outputs };
}

function topLevelDiffs(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

function stepSeconds(r: SimResource, rng: Prng, timing: PlanInput['timing'], factor = 1): number {
  if (r.role === 'stack' || r.role === 'component') return 0;
  if (r.role === 'provider') return rng.int(0, 1);
  const spec = RESOURCE_TYPES[r.specKey ?? ''];
  const [min, max] = spec ? spec.seconds : [1, 3];
  const s = Math.round(rng.int(min, max) * factor);
  return timing === 'fast' ? Math.min(s, rng.int(0, 2)) : s;
}

function failureText(r: SimResource, rng: Prng): string {
  const spec = RESOURCE_TYPES[r.specKey ?? ''];
  const text = spec ? rng.pick(spec.failures) : 'provider returned an unexpected error';
  return text.replaceAll('{id}', r.id || r.name);
}

export function planUpdate(input: PlanInput): PlannedUpdate {
  const steps = input.kind === 'refresh' ? refreshSteps(input) : input.kind === 'destroy' ? destroySteps(input) : updateSteps(input);
  return simulate(input, steps);
}

type StepSpec = Omit<Step, 'idx' | 'started' | 'done' | 'failed' | 'blocked' | 'terminal' | 'preIndex'>;

function makeStep(idx: number, spec: StepSpec): Step {
  return { ...spec, idx, started: false, done: false, failed: false, blocked: false, terminal: null };
}

function updateSteps(input: PlanInput): Step[] {
  const { rng, program, state } = input;
  const steps: Step[] = [];
  const stepOfUrn = new Map<string, number>();
  const providerStep = new Map<string, number>();
  const push = (s: StepSpec) => {
    const step = makeStep(steps.length, s);
    steps.push(step);
    return step.idx;
  };
  const depsOf = (r: SimResource): number[] => {
    const deps: number[] = [];
    const p = stepOfUrn.get(r.parentUrn);
    if (p !== undefined) deps.push(p);
    const providerUrn = r.providerRef ? r.providerRef.slice(0, r.providerRef.lastIndexOf('::')) : '';
    const ps = providerStep.get(providerUrn);
    if (ps !== undefined) deps.push(ps);
    // Some resources depend on the previous sibling (e.g. a policy attachment on its role).
    const prev = steps[steps.length - 1];
    if (prev && prev.res.parentUrn === r.parentUrn && prev.custom && rng.chance(0.4)) deps.push(prev.idx);
    return deps;
  };
  const phase1: number[] = [];
  const phase2Specs: Array<() => void> = [];

  for (const r of program) {
    const current = state.resources.get(r.urn);
    const custom = r.role === 'resource' || r.role === 'provider';
    const component = !custom;
    if (!current) {
      const deployed = deploy(r, rng);
      const idx = push({
        op: 'create',
        res: deployed,
        custom,
        old: null,
        newPre: snapshot(r, { id: '', outputs: {} }),
        newPost: snapshot(deployed),
        detailedDiff: null,
        logical: true,
        outputsOp: 'create',
        duration: stepSeconds(r, rng, input.timing),
        deps: depsOf(r),
        countAs: 'create',
        phase2: false,
        instant: component,
        apply: (s) => s.resources.set(r.urn, deployed),
      });
      phase1.push(idx);
      stepOfUrn.set(r.urn, idx);
      if (r.role === 'provider') providerStep.set(r.urn, idx);
      continue;
    }
    const diffs = custom ? topLevelDiffs(current.inputs, r.inputs) : [];
    const spec = RESOURCE_TYPES[r.specKey ?? ''];
    const keys = spec ? diffs.filter((d) => spec.replaceOn.includes(d)) : [];
    if (keys.length > 0) {
      // Replacement: the same URN gets create-replacement, replace and delete-replaced steps.
      const deployed = deploy(r, rng);
      const detailedDiff = Object.fromEntries(
        diffs.map((d) => [d, { diffKind: keys.includes(d) ? 'update-replace' : 'update', inputDiff: true }]),
      );
      const common = { res: deployed, custom: true, keys, diffs, detailedDiff, phase2: false, instant: false };
      const oldSnap = snapshot(current);
      const oldDeleting = snapshot(current, { delete: true });
      if (r.deleteBeforeReplace) {
        const del = push({
          ...common,
          op: 'delete-replaced',
          res: current,
          old: oldSnap,
          newPre: null,
          newPost: null,
          keys: undefined,
          diffs: undefined,
          detailedDiff: null,
          logical: false,
          outputsOp: 'delete-replaced',
          duration: stepSeconds(r, rng, input.timing, 0.5),
          deps: depsOf(r),
          apply: (s) => s.resources.delete(r.urn),
        });
        const rep = push({
          ...common,
          op: 'replace',
          old: oldSnap,
          newPre: snapshot(r, { id: '', outputs: {} }),
          newPost: snapshot(r, { id: '', outputs: {} }),
          logical: true,
          outputsOp: 'replace',
          duration: 0,
          deps: [del],
          countAs: 'replace',
          apply: () => undefined,
        });
        const cr = push({
          ...common,
          op: 'create-replacement',
          old: oldSnap,
          newPre: snapshot(r, { id: '', outputs: {} }),
          newPost: snapshot(deployed),
          logical: false,
          outputsOp: 'create-replacement',
          duration: stepSeconds(r, rng, input.timing),
          deps: [rep],
          apply: (s) => s.resources.set(r.urn, deployed),
        });
        phase1.push(del, rep, cr);
        stepOfUrn.set(r.urn, cr);
      } else {
        const cr = push({
          ...common,
          op: 'create-replacement',
          old: oldSnap,
          oldPost: oldDeleting,
          newPre: snapshot(r, { id: '', outputs: {} }),
          newPost: snapshot(deployed),
          logical: false,
          outputsOp: 'create-replacement',
          duration: stepSeconds(r, rng, input.timing),
          deps: depsOf(r),
          apply: (s) => {
            s.resources.set(r.urn, deployed);
            s.pending.push(current);
          },
        });
        const rep = push({
          ...common,
          op: 'replace',
          old: oldDeleting,
          newPre: snapshot(deployed),
          newPost: snapshot(deployed),
          logical: true,
          outputsOp: 'replace',
          duration: 0,
          deps: [cr],
          countAs: 'replace',
          apply: () => undefined,
        });
        phase1.push(cr, rep);
        stepOfUrn.set(r.urn, rep);
        phase2Specs.push(() => {
          push({
            op: 'delete-replaced',
            res: current,
            custom: true,
            old: oldDeleting,
            newPre: null,
            newPost: null,
            detailedDiff: null,
            logical: false,
            outputsOp: 'delete-replaced',
            duration: stepSeconds(r, rng, input.timing, 0.5),
            deps: [...phase1],
            phase2: true,
            instant: false,
            apply: (s) => {
              s.pending = s.pending.filter((p) => p !== current);
            },
          });
        });
      }
      continue;
    }
    const updated = diffs.length > 0;
    const next: SimResource = updated ? { ...deploy(r, rng), id: current.id } : { ...current, inputs: r.inputs };
    const op = updated ? 'update' : 'same';
    const idx = push({
      op,
      res: next,
      custom,
      old: snapshot(current),
      newPre: snapshot(r, { id: updated ? current.id : '', outputs: {} }),
      newPost: snapshot(next),
      ...(updated ? { diffs } : {}),
      detailedDiff: updated ? Object.fromEntries(diffs.map((d) => [d, { diffKind: 'update', inputDiff: true }])) : null,
      logical: true,
      outputsOp: op,
      duration: updated ? stepSeconds(r, rng, input.timing, 0.6) : 0,
      deps: depsOf(r),
      countAs: op,
      phase2: false,
      instant: component,
      apply: (s) => s.resources.set(r.urn, next),
    });
    phase1.push(idx);
    stepOfUrn.set(r.urn, idx);
    if (r.role === 'provider') providerStep.set(r.urn, idx);
  }

  for (const add of phase2Specs) add();
  // Left-over pending deletes of earlier interrupted replacements.
  pushPendingDeletes(state.pendingDeletes, phase1, rng, input.timing, push);
  // Resources no longer in the program: deleted children first, after every create/update.
  const inProgram = new Set(program.map((r) => r.urn));
  const removed = [...state.resources.values()].filter((r) => !inProgram.has(r.urn));
  pushDeletes(removed, [...phase1], rng, input.timing, push);
  return steps;
}

/** `delete-replaced` steps for the pending deletes left by earlier interrupted replacements. */
function pushPendingDeletes(
  pendingDeletes: readonly SimResource[],
  baseDeps: readonly number[],
  rng: Prng,
  timing: PlanInput['timing'],
  push: (s: StepSpec) => number,
): void {
  for (const pending of pendingDeletes) {
    push({
      op: 'delete-replaced',
      res: pending,
      custom: true,
      old: snapshot(pending, { delete: true }),
      newPre: null,
      newPost: null,
      detailedDiff: null,
      logical: false,
      outputsOp: 'delete-replaced',
      duration: stepSeconds(pending, rng, timing, 0.5),
      deps: [...baseDeps],
      phase2: true,
      instant: false,
      apply: (s) => {
        s.pending = s.pending.filter((p) => p !== pending);
      },
    });
  }
}

/** Delete steps for `doomed` in reverse registration order; a parent waits for its children, a provider for its users. */
function pushDeletes(
  doomed: readonly SimResource[],
  baseDeps: number[],
  rng: Prng,
  timing: PlanInput['timing'],
  push: (s: StepSpec) => number,
): void {
  const byUrn = new Map<string, number>();
  const reversed = [...doomed].reverse();
  for (const r of reversed) {
    const custom = r.role === 'resource' || r.role === 'provider';
    const deps = [...baseDeps];
    for (const other of doomed) {
      const childIdx = byUrn.get(other.urn);
      if (childIdx === undefined) continue;
      const usesProvider = r.role === 'provider' && other.providerRef.startsWith(`${r.urn}::`);
      if (other.parentUrn === r.urn || usesProvider || r.role === 'stack') deps.push(childIdx);
    }
    const idx = push({
      op: 'delete',
      res: r,
      custom,
      old: snapshot(r),
      newPre: null,
      newPost: null,
      detailedDiff: null,
      logical: true,
      outputsOp: 'delete',
      duration: custom ? stepSeconds(r, rng, timing, 0.5) : 0,
      deps,
      countAs: 'delete',
      phase2: true,
      // Component deletes get their outputs event at step end (pulumi-api.md 6.5 rule 3).
      instant: false,
      apply: (s) => s.resources.delete(r.urn),
    });
    byUrn.set(r.urn, idx);
  }
}

function destroySteps(input: PlanInput): Step[] {
  const steps: Step[] = [];
  const push = (s: StepSpec) => {
    const step = makeStep(steps.length, s);
    steps.push(step);
    return step.idx;
  };
  pushPendingDeletes(input.state.pendingDeletes, [], input.rng, input.timing, push);
  pushDeletes([...input.state.resources.values()], [], input.rng, input.timing, push);
  return steps;
}

function refreshSteps(input: PlanInput): Step[] {
  const { rng } = input;
  const steps: Step[] = [];
  const candidates = [...input.state.resources.values()].filter((r) => r.role === 'resource');
  const forced = input.forceDrift && candidates.length > 0 ? rng.pick(candidates).urn : undefined;
  for (const r of candidates) {
    const roll = rng.next();
    const result = r.urn === forced ? 'update' : roll < 0.03 ? 'delete' : roll < 0.15 ? 'update' : 'same';
    const spec = RESOURCE_TYPES[r.specKey ?? ''];
    let refreshed: SimResource | null = r;
    if (result === 'delete') refreshed = null;
    if (result === 'update') {
      // Drift: someone changed the resource outside Pulumi; the next update reverts it.
      const prop = spec && spec.mutable.length > 0 ? rng.pick(spec.mutable) : 'tags';
      const value = mutateValue(r.inputs[prop], input.serial());
      refreshed = { ...r, inputs: { ...r.inputs, [prop]: value }, outputs: { ...r.outputs, [prop]: value } };
    }
    const after = refreshed;
    steps.push(
      makeStep(steps.length, {
        op: 'refresh',
        res: r,
        custom: true,
        old: snapshot(r),
        newPre: snapshot(r),
        newPost: after ? snapshot(after) : null,
        detailedDiff: null,
        logical: false,
        outputsOp: result,
        duration: input.timing === 'fast' ? 0 : rng.int(0, 2),
        deps: [],
        countAs: result,
        phase2: false,
        instant: false,
        apply: (s) => {
          if (after) s.resources.set(r.urn, after);
          else s.resources.delete(r.urn);
        },
      }),
    );
  }
  return steps;
}

interface Running {
  readonly step: Step;
  readonly end: number;
}

interface RunState {
  stopping: 'failed' | 'cancelled' | null;
  maybeCorrupt: boolean;
  completedSteps: number;
  startedCount: number;
  t: number;
  running: Running[];
}

const ERROR_PREFIX = '<{%fg 1%}>error: <{%reset%}>';

function simulate(input: PlanInput, steps: Step[]): PlannedUpdate {
  const { rng } = input;
  const events: WireEvent[] = [];
  const start = input.startTime;
  const run: RunState = { stopping: null, maybeCorrupt: false, completedSteps: 0, startedCount: 0, t: 0, running: [] };
  const emit = (key: string, payload: Record<string, unknown>) => {
    events.push({ timestamp: start + run.t, type: key, [key]: payload } as WireEvent);
  };
  const planning = input.preview ? { planning: true } : {};
  const metadata = (s: Step, terminal: boolean): Record<string, unknown> => ({
    op: terminal ? s.outputsOp : s.op,
    urn: s.res.urn,
    type: s.res.type,
    old: terminal ? (s.oldPost ?? s.old) : s.old,
    new: terminal ? s.newPost : s.newPre,
    ...(s.keys && s.keys.length > 0 ? { keys: s.keys } : {}),
    ...(s.diffs && s.diffs.length > 0 ? { diffs: s.diffs } : {}),
    detailedDiff: s.detailedDiff,
    ...(s.logical ? { logical: true } : {}),
    provider: s.res.providerRef,
  });
  const diag = (d: { urn?: string | undefined; prefix?: string; message: string; severity: string; ephemeral?: boolean }) =>
    emit('diagnosticEvent', {
      ...(d.urn ? { urn: d.urn } : {}),
      ...(d.prefix ? { prefix: d.prefix } : {}),
      message: d.message,
      color: 'raw',
      severity: d.severity,
      ...(d.ephemeral ? { ephemeral: true } : {}),
    });

  const stackStep = steps.find((s) => s.res.role === 'stack' && s.op !== 'delete');
  const stackUrn = steps.find((s) => s.res.role === 'stack')?.res.urn ?? input.program.find((r) => r.role === 'stack')?.urn;
  const policyRun = input.policyPack && input.kind === 'update';
  const violations: ViolationRecord[] = [];
  const changes: Record<string, number> = {};
  const state: MutableState = { resources: new Map(input.state.resources), pending: [...input.state.pendingDeletes] };

  // How the update ends is decided up front, so the stream is built in one pass.
  let mode: FailureMode | undefined = input.result === 'failed' ? (input.failureMode ?? 'resource') : undefined;
  const realWork = steps.filter((s) => s.custom && s.op !== 'same' && s.op !== 'replace');
  if (mode === 'policy' && !policyRun) mode = 'resource';
  if (mode === 'resource' && realWork.length === 0) mode = 'program';
  const failing = mode === 'resource' ? rng.pick(realWork).idx : -1;
  // Policies analyze a resource before its first step; deletes are not analyzed.
  const analyzed = (s: Step) => s.res.role === 'resource' && s.op !== 'delete' && s.op !== 'delete-replaced' && s.op !== 'replace';
  const policyTargets = steps.filter(analyzed);
  if (mode === 'policy' && policyTargets.length === 0) mode = 'program';
  const policyBlocked = mode === 'policy' ? rng.pick(policyTargets).idx : -1;
  const earliest = input.lateStops ? Math.ceil(steps.length / 3) : 0;
  const programFailAt = mode === 'program' ? rng.int(earliest, Math.max(earliest, Math.ceil(steps.length / 2))) : -1;
  const cancelAt = input.result === 'cancelled' ? rng.int(earliest, Math.max(earliest, Math.ceil(steps.length * 0.6))) : -1;
  const customs = steps.filter((s) => s.custom);
  const warnStep = customs.length > 0 && rng.chance(0.25) ? rng.pick(customs) : undefined;
  const debugStep = steps.length > 0 && rng.chance(0.06) ? rng.pick(steps) : undefined;

  const registered = new Set<string>();
  const childSteps = new Map<string, Step[]>();
  const componentStep = new Map<string, Step>();
  for (const s of steps) {
    if (s.phase2) continue;
    const list = childSteps.get(s.res.parentUrn) ?? [];
    list.push(s);
    childSteps.set(s.res.parentUrn, list);
    if (!s.custom) componentStep.set(s.res.urn, s);
  }

  const terminalOutputs = (s: Step) => {
    emit('resOutputsEvent', { metadata: metadata(s, true), ...planning });
    s.terminal = 'outputs';
  };
  /** A component calls registerOutputs once its children are done; the stack's comes at the very end. */
  const maybeRegister = (urn: string): void => {
    const comp = componentStep.get(urn);
    if (!comp || comp.res.role === 'stack' || registered.has(urn) || !comp.done || !comp.res.registersOutputs) return;
    if (run.stopping === 'cancelled') return;
    const kids = childSteps.get(urn) ?? [];
    const ready = kids.every((k) => k.done && !k.failed && (k.custom || registered.has(k.res.urn) || !k.res.registersOutputs));
    if (!ready) return;
    registered.add(urn);
    terminalOutputs(comp);
    maybeRegister(comp.res.parentUrn);
  };

  const succeed = (s: Step) => {
    s.done = true;
    run.completedSteps++;
    if (s.countAs !== undefined && (s.logical || s.op === 'refresh') && COUNTED_OPS.has(s.countAs)) {
      changes[s.countAs] = (changes[s.countAs] ?? 0) + 1;
    }
    if (!input.preview) s.apply(state);
    // Components and the stack get no outputs at step end in an update, except deletes.
    if (s.custom || s.op === 'delete' || input.preview) terminalOutputs(s);
    maybeRegister(s.res.urn);
    maybeRegister(s.res.parentUrn);
  };

  const policyEvent = (urn: string, name: string, message: string, level: string, severity: string) => {
    emit('policyEvent', {
      resourceUrn: urn,
      message: `<{%reset%}>${message}<{%reset%}>\n`,
      color: 'raw',
      policyName: name,
      policyPackName: POLICY_PACK.name,
      policyPackVersion: String(POLICY_PACK.version),
      policyPackVersionTag: POLICY_PACK.versionTag,
      enforcementLevel: level,
      severity,
    });
    violations.push({ policyPack: POLICY_PACK.name, policy: name, enforcementLevel: level });
  };

  const fail = (s: Step) => {
    s.done = true;
    s.failed = true;
    diag({ urn: s.res.urn, prefix: ERROR_PREFIX, message: `<{%reset%}>${failureText(s.res, rng)}<{%reset%}>\n`, severity: 'error' });
    // A failed step in a preview reports only the diagnostic (pulumi-api.md 6.7).
    if (!input.preview) {
      const status = rng.weighted<number>([
        [0, 7],
        [1, 2],
        [2, 1],
      ]);
      if (status === 2) run.maybeCorrupt = true;
      emit('resOpFailedEvent', { metadata: metadata(s, false), status, steps: run.completedSteps });
      s.terminal = 'failed';
    }
    run.stopping = 'failed';
    // Steps in flight when the error hit mostly finish; some are cut off (the CLI was stopped).
    run.running = run.running.filter(() => !rng.chance(0.35));
  };

  const programFailure = () => {
    if (input.kind === 'update') {
      diag({
        urn: stackUrn,
        message: "    TypeError: Cannot read properties of undefined (reading 'arn')\n        at Object.<anonymous> (/app/index.ts:42:37)\n",
        severity: 'info#err',
      });
      diag({
        urn: stackUrn,
        prefix: ERROR_PREFIX,
        message: "<{%reset%}>Running program '/app' failed with an unhandled exception:\n<{%reset%}>TypeError: Cannot read properties of undefined (reading 'arn')<{%reset%}>\n",
        severity: 'error',
      });
    } else {
      diag({
        urn: stackUrn,
        prefix: ERROR_PREFIX,
        message: '<{%reset%}>pulumi:providers:aws resource \'aws-provider\' has a problem: No valid credential sources found.<{%reset%}>\n',
        severity: 'error',
      });
    }
    run.stopping = 'failed';
  };

  /** Cancellation and program failures strike after a planned number of started steps. */
  const checkTriggers = () => {
    if (run.stopping !== null) return;
    if (run.startedCount === cancelAt) {
      run.stopping = 'cancelled';
      run.running = [];
    } else if (run.startedCount === programFailAt) {
      programFailure();
    }
  };

  const startStep = (s: Step) => {
    s.started = true;
    if (policyRun && s.res.role === 'resource') {
      if (s.idx === policyBlocked) {
        // A mandatory violation stops the step before it runs: no pre event for it.
        policyEvent(s.res.urn, MANDATORY_POLICY.name, MANDATORY_POLICY.message, 'mandatory', MANDATORY_POLICY.severity);
        s.blocked = true;
        run.stopping = 'failed';
        return;
      }
      const advisory = RESOURCE_TYPES[s.res.specKey ?? '']?.advisoryPolicy;
      if (advisory && analyzed(s) && rng.chance(0.5)) {
        policyEvent(s.res.urn, advisory.name, advisory.message, 'advisory', advisory.severity);
      }
    }
    s.preIndex = events.length;
    emit('resourcePreEvent', { metadata: metadata(s, false), ...planning });
    run.startedCount++;
    if (s === warnStep) {
      diag({
        urn: s.res.urn,
        prefix: '<{%fg 3%}>warning: <{%reset%}>',
        message: `<{%reset%}>${s.res.type} is deprecated: it will be removed in the next major version of the provider<{%reset%}>\n`,
        severity: 'warning',
      });
    }
    if (s === debugStep) diag({ urn: s.res.urn, message: `Registering resource: t=${s.res.type}, name=${s.res.name}\n`, severity: 'debug' });
    if (s === stackStep && !input.preview && input.kind === 'update') {
      if (rng.chance(0.35)) {
        const line = rng.pick(PROGRAM_OUTPUT_LINES).replace('{build}', input.buildLabel).replace('{stack}', input.stack);
        diag({ urn: s.res.urn, message: `${line}\n`, severity: 'info' });
      }
      if (rng.chance(0.1)) diag({ urn: s.res.urn, message: `${rng.pick(STDERR_LINES)}\n`, severity: 'info#err' });
    }
    if (s.duration >= 60) {
      const verb = s.op === 'delete' || s.op === 'delete-replaced' ? 'deleting' : 'creating';
      diag({ urn: s.res.urn, message: `Still ${verb}... [1m0s elapsed]`, severity: 'info', ephemeral: true });
    }
    if (s.instant || s.duration === 0) {
      if (s.idx === failing) fail(s);
      else succeed(s);
    } else {
      run.running.push({ step: s, end: run.t + s.duration });
    }
    checkTriggers();
  };

  const depsDone = (s: Step) => s.deps.every((d) => steps[d]?.done === true && steps[d]?.failed === false);

  if (policyRun) emit('policyLoadEvent', {});
  emit('preludeEvent', { config: input.preludeConfig });
  run.t += rng.int(0, 1);
  checkTriggers();

  let firstOpen = 0;
  for (;;) {
    while (run.stopping === null && run.running.length < PARALLELISM) {
      while (firstOpen < steps.length && steps[firstOpen]?.started) firstOpen++;
      let next: Step | undefined;
      for (let i = firstOpen; i < steps.length; i++) {
        const s = steps[i];
        if (s && !s.started && depsDone(s)) {
          next = s;
          break;
        }
      }
      if (!next) break;
      startStep(next);
    }
    if (run.running.length === 0) break;
    const nextEnd = Math.min(...run.running.map((r) => r.end));
    run.t = nextEnd;
    const finishing = run.running.filter((r) => r.end === nextEnd);
    run.running = run.running.filter((r) => r.end !== nextEnd);
    for (const { step } of finishing) {
      if (step.idx === failing) fail(step);
      else succeed(step);
    }
  }
  if (run.stopping === null && steps.some((s) => !s.started)) throw new Error('simulator plan has a dependency cycle');

  // Stack outputs come last: on success, sometimes after a step failure, never when cancelled.
  if (stackStep?.done && run.stopping !== 'cancelled' && (run.stopping === null || (mode === 'resource' && rng.chance(0.5)))) {
    run.t += rng.int(0, 1);
    terminalOutputs(stackStep);
  }
  if (run.stopping === 'failed') {
    const what = input.preview ? 'preview' : input.kind;
    diag({ prefix: ERROR_PREFIX, message: `<{%reset%}>${what} failed<{%reset%}>\n`, severity: 'error' });
  }
  if (policyRun && run.stopping !== 'cancelled') {
    emit('policyAnalyzeStackSummaryEvent', {
      policyPackName: POLICY_PACK.name,
      policyPackVersion: String(POLICY_PACK.version),
      policyPackVersionTag: POLICY_PACK.versionTag,
      ...(violations.length > 0 ? { failed: [...new Set(violations.map((v) => v.policy))] } : { passed: ['stack-has-owner-tag'] }),
    });
  }
  run.t += rng.int(0, 1);
  const summaryResult = run.stopping === 'cancelled' ? 'canceled' : run.stopping === 'failed' ? 'failed' : 'succeeded';
  const wanted = input.result === 'cancelled' ? 'canceled' : input.result;
  if (summaryResult !== wanted) throw new Error(`simulator plan ended ${summaryResult}, wanted ${wanted}`);
  emit('summaryEvent', {
    maybeCorrupt: run.maybeCorrupt,
    durationSeconds: Math.max(1, run.t + 1),
    resourceChanges: { ...changes },
    PolicyPacks: policyRun ? { [POLICY_PACK.name]: String(POLICY_PACK.version) } : {},
    isPreview: input.preview,
    result: summaryResult,
  });
  const endTime = start + run.t + rng.int(0, 2);

  const operations: OperationRecord[] = steps
    .filter((s) => s.preIndex !== undefined)
    .sort((a, b) => (a.preIndex ?? 0) - (b.preIndex ?? 0))
    .map((s) => ({
      op: s.op,
      type: s.res.type,
      result: s.terminal === 'outputs' ? 'succeeded' : s.terminal === 'failed' ? 'failed' : 'interrupted',
    }));

  return {
    events,
    endTime,
    operations,
    policyViolations: violations,
    resourceChanges: changes,
    state: input.preview ? input.state : { resources: state.resources, pendingDeletes: state.pending },
    maybeCorrupt: run.maybeCorrupt,
  };
}
