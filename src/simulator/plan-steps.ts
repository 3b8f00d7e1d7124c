import { RESOURCE_TYPES } from './catalog.js';
import { mutateValue } from './program.js';
import type { Prng } from './prng.js';
import type { PlanInput, SimResource } from './sim-model.js';
import { stepSeconds } from './step-timing.js';

/**
 * Step planning: which steps an update, destroy or refresh of a stack runs, in registration
 * order, with their dependencies, snapshots and what each does to the stack's state.
 */

export type Snapshot = Record<string, unknown>;

export interface Step {
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

export interface MutableState {
  resources: Map<string, SimResource>;
  pending: SimResource[];
}

export type StepSpec = Omit<Step, 'idx' | 'started' | 'done' | 'failed' | 'blocked' | 'terminal' | 'preIndex'>;

export function makeStep(idx: number, spec: StepSpec): Step {
  return { ...spec, idx, started: false, done: false, failed: false, blocked: false, terminal: null };
}

/** The steps of one update, destroy or refresh. */
export function planSteps(input: PlanInput): Step[] {
  return input.kind === 'refresh' ? refreshSteps(input) : input.kind === 'destroy' ? destroySteps(input) : updateSteps(input);
}

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
function deploy(r: SimResource, rng: Prng): SimResource {
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
  const ctx: Planning = { rng, timing: input.timing, push, depsOf, phase1, stepOfUrn, phase2Specs };
  /** A create, update or same step is the one its children and provider users wait for. */
  const settle = (r: SimResource, idx: number): void => {
    phase1.push(idx);
    stepOfUrn.set(r.urn, idx);
    if (r.role === 'provider') providerStep.set(r.urn, idx);
  };

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
      settle(r, idx);
      continue;
    }
    const diffs = custom ? topLevelDiffs(current.inputs, r.inputs) : [];
    const spec = RESOURCE_TYPES[r.specKey ?? ''];
    const keys = spec ? diffs.filter((d) => spec.replaceOn.includes(d)) : [];
    if (keys.length > 0) {
      replacementSteps(ctx, r, current, diffs, keys);
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
    settle(r, idx);
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

/** What updateSteps shares with the helpers that add steps. */
interface Planning {
  readonly rng: Prng;
  readonly timing: PlanInput['timing'];
  push(s: StepSpec): number;
  depsOf(r: SimResource): number[];
  /** Create/update steps (phase 1); phase-2 deletes wait for all of them. */
  readonly phase1: number[];
  readonly stepOfUrn: Map<string, number>;
  readonly phase2Specs: Array<() => void>;
}

/** Replacement: the same URN gets create-replacement, replace and delete-replaced steps, in the order deleteBeforeReplace asks for. */
function replacementSteps(ctx: Planning, r: SimResource, current: SimResource, diffs: string[], keys: string[]): void {
  const deployed = deploy(r, ctx.rng);
  const detailedDiff = Object.fromEntries(
    diffs.map((d) => [d, { diffKind: keys.includes(d) ? 'update-replace' : 'update', inputDiff: true }]),
  );
  const common = { res: deployed, custom: true, keys, diffs, detailedDiff, phase2: false, instant: false };
  const oldSnap = snapshot(current);
  const oldDeleting = snapshot(current, { delete: true });
  if (r.deleteBeforeReplace) {
    const del = ctx.push({
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
      duration: stepSeconds(r, ctx.rng, ctx.timing, 0.5),
      deps: ctx.depsOf(r),
      apply: (s) => s.resources.delete(r.urn),
    });
    const rep = ctx.push({
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
    const cr = ctx.push({
      ...common,
      op: 'create-replacement',
      old: oldSnap,
      newPre: snapshot(r, { id: '', outputs: {} }),
      newPost: snapshot(deployed),
      logical: false,
      outputsOp: 'create-replacement',
      duration: stepSeconds(r, ctx.rng, ctx.timing),
      deps: [rep],
      apply: (s) => s.resources.set(r.urn, deployed),
    });
    ctx.phase1.push(del, rep, cr);
    ctx.stepOfUrn.set(r.urn, cr);
  } else {
    const cr = ctx.push({
      ...common,
      op: 'create-replacement',
      old: oldSnap,
      oldPost: oldDeleting,
      newPre: snapshot(r, { id: '', outputs: {} }),
      newPost: snapshot(deployed),
      logical: false,
      outputsOp: 'create-replacement',
      duration: stepSeconds(r, ctx.rng, ctx.timing),
      deps: ctx.depsOf(r),
      apply: (s) => {
        s.resources.set(r.urn, deployed);
        s.pending.push(current);
      },
    });
    const rep = ctx.push({
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
    ctx.phase1.push(cr, rep);
    ctx.stepOfUrn.set(r.urn, rep);
    ctx.phase2Specs.push(() => {
      ctx.push({
        op: 'delete-replaced',
        res: current,
        custom: true,
        old: oldDeleting,
        newPre: null,
        newPost: null,
        detailedDiff: null,
        logical: false,
        outputsOp: 'delete-replaced',
        duration: stepSeconds(r, ctx.rng, ctx.timing, 0.5),
        deps: [...ctx.phase1],
        phase2: true,
        instant: false,
        apply: (s) => {
          s.pending = s.pending.filter((p) => p !== current);
        },
      });
    });
  }
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
      // Component deletes get their outputs event at step end (shared pulumi-api.md 6.5 rule 3).
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
