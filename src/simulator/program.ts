import { COMPONENT_TYPES, RESOURCE_TYPES, TOP_LEVEL_COMPONENTS, TOP_LEVEL_RESOURCES } from './catalog.js';
import type { Prng } from './prng.js';
import type { ProgramBuilder, SimResource } from './sim-model.js';

/**
 * A stack's "program": the resources it declares, in registration order. The generator
 * evolves it between updates (edits, additions, removals); each update then diffs it
 * against the deployed state, which is what makes the step sequences realistic.
 */

export const STACK_TYPE = 'pulumi:pulumi:Stack';
export const AWS_PROVIDER_TYPE = 'pulumi:providers:aws';

export function stackUrn(project: string, stack: string): string {
  return `urn:pulumi:${stack}::${project}::${STACK_TYPE}::${project}-${stack}`;
}

function urnOf(project: string, stack: string, typeChain: string, name: string): string {
  return `urn:pulumi:${stack}::${project}::${typeChain}::${name}`;
}

export function createProgramBuilder(project: string, stack: string, region: string, rng: Prng): ProgramBuilder {
  const awsUrn = urnOf(project, stack, AWS_PROVIDER_TYPE, 'aws-provider');
  const awsId = rng.uuid();
  const randomUrn = urnOf(project, stack, 'pulumi:providers:random', 'default_4_16_7');
  let serial = 0;
  return {
    project,
    stack,
    region,
    rng,
    awsProviderRef: `${awsUrn}::${awsId}`,
    randomProviderRef: `${randomUrn}::${rng.uuid()}`,
    next: () => ++serial,
  };
}

function chainFor(parent: SimResource, type: string): string {
  return parent.role === 'stack' ? type : `${parent.typeChain}$${type}`;
}

function uniqueName(program: readonly SimResource[], base: string): string {
  const taken = new Set(program.map((r) => r.name));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

function rootResources(b: ProgramBuilder): SimResource[] {
  const [awsUrn, awsId] = splitProviderRef(b.awsProviderRef);
  return [
    {
      urn: stackUrn(b.project, b.stack),
      name: `${b.project}-${b.stack}`,
      type: STACK_TYPE,
      role: 'stack',
      typeChain: STACK_TYPE,
      parentUrn: '',
      providerRef: '',
      inputs: {},
      outputs: {},
      id: '',
      registersOutputs: true,
      deleteBeforeReplace: false,
    },
    {
      urn: awsUrn,
      name: 'aws-provider',
      type: AWS_PROVIDER_TYPE,
      role: 'provider',
      typeChain: AWS_PROVIDER_TYPE,
      parentUrn: '',
      providerRef: '',
      inputs: { region: b.region, version: '6.52.0', skipCredentialsValidation: 'false' },
      outputs: {},
      // A provider's ID is fixed when the program declares it, so dependents can reference it.
      id: awsId,
      registersOutputs: false,
      deleteBeforeReplace: false,
    },
  ];
}

export function splitProviderRef(ref: string): [string, string] {
  const i = ref.lastIndexOf('::');
  return [ref.slice(0, i), ref.slice(i + 2)];
}

function customResource(b: ProgramBuilder, program: readonly SimResource[], parent: SimResource, specKey: string, baseName: string): SimResource {
  const spec = RESOURCE_TYPES[specKey];
  if (!spec) throw new Error(`unknown resource spec ${specKey}`);
  const name = uniqueName(program, baseName);
  const typeChain = chainFor(parent, spec.type);
  return {
    urn: urnOf(b.project, b.stack, typeChain, name),
    name,
    type: spec.type,
    role: 'resource',
    typeChain,
    parentUrn: parent.urn,
    providerRef: spec.provider === 'aws' ? b.awsProviderRef : b.randomProviderRef,
    specKey,
    inputs: spec.inputs(name, b.rng),
    outputs: {},
    id: '',
    registersOutputs: false,
    deleteBeforeReplace: spec.deleteBeforeReplace,
  };
}

/** Appends a component and its children (depth first) to `program`. */
function addComponent(b: ProgramBuilder, program: SimResource[], parent: SimResource, componentKey: string): void {
  const spec = COMPONENT_TYPES[componentKey];
  if (!spec) throw new Error(`unknown component spec ${componentKey}`);
  const name = uniqueName(program, parent.role === 'stack' ? spec.prefix : `${parent.name}-${spec.prefix}`);
  const typeChain = chainFor(parent, spec.type);
  const component: SimResource = {
    urn: urnOf(b.project, b.stack, typeChain, name),
    name,
    type: spec.type,
    role: 'component',
    typeChain,
    parentUrn: parent.urn,
    providerRef: '',
    inputs: {},
    outputs: {},
    id: '',
    // Some components never call registerOutputs, so they never get a terminal event.
    registersOutputs: b.rng.chance(0.75),
    deleteBeforeReplace: false,
  };
  program.push(component);
  for (const [childKey, suffix] of spec.children) {
    program.push(customResource(b, program, component, childKey, `${name}-${suffix}`));
  }
  for (const nested of spec.components ?? []) addComponent(b, program, component, nested);
}

function customCount(program: readonly SimResource[]): number {
  return program.filter((r) => r.role === 'resource').length;
}

function stackOf(program: readonly SimResource[]): SimResource {
  const s = program.find((r) => r.role === 'stack');
  if (!s) throw new Error('program without a stack resource');
  return s;
}

function addSomething(b: ProgramBuilder, program: SimResource[], target: number): void {
  const stack = stackOf(program);
  const room = target - customCount(program);
  if (room >= 3 && b.rng.chance(0.6)) {
    addComponent(b, program, stack, b.rng.pick(TOP_LEVEL_COMPONENTS));
  } else {
    const key = b.rng.pick(TOP_LEVEL_RESOURCES);
    program.push(customResource(b, program, stack, key, `${key}-${b.next()}`));
  }
}

/** The initial program: the stack, an explicit AWS provider, then components and resources up to ~`size`. */
export function buildInitialProgram(b: ProgramBuilder, size: number): SimResource[] {
  const program = rootResources(b);
  const target = Math.max(1, size);
  while (customCount(program) < target) addSomething(b, program, target);
  return program;
}

function descendants(program: readonly SimResource[], urn: string): Set<string> {
  const out = new Set<string>([urn]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of program) {
      if (!out.has(r.urn) && out.has(r.parentUrn)) {
        out.add(r.urn);
        grew = true;
      }
    }
  }
  return out;
}

/** Changes one value so that it differs from before (used for edits and drift). */
export function mutateValue(value: unknown, serial: number): unknown {
  if (typeof value === 'number') return value + 1 + (serial % 7);
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'string') return `${value.replace(/-r\d+$/, '')}-r${serial}`;
  if (Array.isArray(value)) {
    const last: unknown = value[value.length - 1];
    const extra = typeof last === 'object' && last !== null ? { ...last, description: `rule-${serial}` } : `item-${serial}`;
    return [...(value as unknown[]), extra];
  }
  if (typeof value === 'object' && value !== null) return { ...value, revision: `r${serial}` };
  return `r${serial}`;
}

export function withInput(r: SimResource, prop: string, serial: number): SimResource {
  return { ...r, inputs: { ...r.inputs, [prop]: mutateValue(r.inputs[prop], serial) } };
}

export interface MutationRequest {
  /** Force at least one change of this shape. */
  readonly force?: 'update' | 'replace-cbd' | 'replace-dbr' | 'add' | 'remove';
  /** Probability scale of random edits (0 = none). */
  readonly churn?: number;
}

/** The next version of a program: random edits, additions and removals (and any forced change). */
export function mutateProgram(b: ProgramBuilder, program: readonly SimResource[], target: number, req: MutationRequest = {}): SimResource[] {
  const churn = req.churn ?? 1;
  let out = [...program];
  const rng = b.rng;
  const customs = () => out.filter((r) => r.role === 'resource' && r.specKey !== undefined);
  const specOf = (r: SimResource) => RESOURCE_TYPES[r.specKey ?? ''];

  const edit = (r: SimResource, kind: 'update' | 'replace', dbr?: boolean) => {
    const spec = specOf(r);
    if (!spec) return false;
    const props = kind === 'update' ? spec.mutable : spec.replaceOn;
    if (props.length === 0) return false;
    const prop = rng.pick(props);
    let next = withInput(r, prop, b.next());
    if (dbr !== undefined) next = { ...next, deleteBeforeReplace: dbr };
    out = out.map((x) => (x.urn === r.urn ? next : x));
    return true;
  };

  for (const r of customs()) {
    const roll = rng.next();
    if (roll < 0.08 * churn) edit(r, 'update');
    else if (roll < 0.105 * churn) edit(r, 'replace');
  }

  const size = customCount(out);
  if (rng.chance((size < target ? 0.35 : 0.15) * churn)) addSomething(b, out, target);
  if (rng.chance((size > target * 1.3 ? 0.4 : 0.08) * churn)) removeSomething(out);

  switch (req.force) {
    case 'update': {
      const c = customs().filter((r) => (specOf(r)?.mutable.length ?? 0) > 0);
      if (c.length > 0) edit(rng.pick(c), 'update');
      break;
    }
    case 'replace-cbd':
    case 'replace-dbr': {
      const c = customs().filter((r) => (specOf(r)?.replaceOn.length ?? 0) > 0);
      if (c.length > 0) edit(rng.pick(c), 'replace', req.force === 'replace-dbr');
      break;
    }
    case 'add':
      addSomething(b, out, Number.MAX_SAFE_INTEGER);
      break;
    case 'remove':
      removeSomething(out);
      break;
    default:
      break;
  }
  return out;

  function removeSomething(list: SimResource[]): void {
    const stack = stackOf(list);
    const top = list.filter((r) => r.parentUrn === stack.urn && (r.role === 'component' || r.role === 'resource'));
    if (top.length <= 1) return;
    const victim = rng.pick(top);
    const gone = descendants(list, victim.urn);
    const kept = list.filter((r) => !gone.has(r.urn));
    list.splice(0, list.length, ...kept);
  }
}
