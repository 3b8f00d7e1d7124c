import type { StackRef } from '../domain/stack.js';
import { SimulatorError } from './simulator-error.js';
import { ORG_NAMES, PEOPLE, POLICY_PACK, PROJECT_NAMES, STACK_NAMES } from './catalog.js';
import { FIXTURE_PROJECT, loadFixtureStack } from './fixture-stack.js';
import { defaultFixturesDir } from './package-root.js';
import { planUpdate } from './plan-update.js';
import { createPrng, hashString, type Prng } from './prng.js';
import { buildInitialProgram, createProgramBuilder, mutateProgram, type MutationRequest } from './program.js';
import type { FailureMode, PlanKind, PlannedResult, SimStack, SimUpdate, StackContext, UserInfo } from './sim-model.js';
import type { SimulatorTruth, TruthUpdate } from './simulator-truth.js';
import { updateMetadata } from './update-metadata.js';

export interface SimulatorScale {
  readonly orgs: number;
  readonly projectsPerOrg: number;
  readonly stacksPerProject: number;
  readonly updatesPerStack: number;
  readonly resourcesPerStack: number;
}

export const DEFAULT_SCALE: SimulatorScale = {
  orgs: 2,
  projectsPerOrg: 3,
  stacksPerProject: 4,
  updatesPerStack: 8,
  resourcesPerStack: 10,
};

export interface WorldOptions {
  readonly seed: number;
  readonly nowSeconds: number;
  readonly scale?: Partial<SimulatorScale>;
  /** true: require the fixture stack; false: none; undefined: serve it when the fixtures exist. */
  readonly fixtures?: boolean;
  readonly fixturesDir?: string;
  /** Events a tick reveals per running update. */
  readonly tickEvents?: number;
}

export interface StartOptions {
  readonly kind?: PlanKind;
  readonly result?: PlannedResult;
}

interface UpdateSpec {
  readonly kind: PlanKind;
  readonly result: PlannedResult;
  readonly failureMode?: FailureMode;
  readonly force?: MutationRequest['force'];
  readonly drift?: boolean;
}

/**
 * The scripted history of the first generated stack, so that every kind and result and
 * every event semantic appears at any seed and scale (random stacks add variety on top).
 */
const SHOWCASE: readonly UpdateSpec[] = [
  { kind: 'update', result: 'succeeded' },
  { kind: 'update', result: 'succeeded', force: 'replace-cbd' },
  { kind: 'update', result: 'succeeded', force: 'replace-dbr' },
  { kind: 'update', result: 'failed', failureMode: 'resource', force: 'update' },
  { kind: 'refresh', result: 'succeeded', drift: true },
  { kind: 'update', result: 'cancelled', force: 'add' },
  { kind: 'update', result: 'failed', failureMode: 'policy' },
  { kind: 'refresh', result: 'failed', failureMode: 'resource' },
  { kind: 'update', result: 'succeeded', force: 'remove' },
  { kind: 'destroy', result: 'succeeded' },
  { kind: 'update', result: 'succeeded' },
  { kind: 'update', result: 'failed', failureMode: 'program' },
  { kind: 'destroy', result: 'failed', failureMode: 'resource' },
  { kind: 'update', result: 'succeeded', force: 'update' },
];

const SHOWCASE_PREVIEWS: ReadonlyArray<UpdateSpec & { readonly wireKind: string }> = [
  { kind: 'update', result: 'succeeded', force: 'replace-cbd', wireKind: 'Pupdate' },
  { kind: 'update', result: 'failed', failureMode: 'resource', force: 'update', wireKind: 'Pupdate' },
  { kind: 'refresh', result: 'succeeded', wireKind: 'Prefresh' },
  { kind: 'update', result: 'succeeded', force: 'add', wireKind: 'preview' },
  { kind: 'destroy', result: 'succeeded', wireKind: 'Pdestroy' },
];

const DAY = 86_400;

function nameAt(list: readonly string[], i: number): string {
  const base = list[i % list.length] ?? 'item';
  const round = Math.floor(i / list.length);
  return round === 0 ? base : `${base}-${round + 1}`;
}

function previewKind(kind: PlanKind, rng: Prng): string {
  if (kind === 'refresh') return 'Prefresh';
  if (kind === 'destroy') return 'Pdestroy';
  // Older service records report previews of updates as plain `preview`.
  return rng.chance(0.15) ? 'preview' : 'Pupdate';
}

export class SimWorld {
  readonly stacks: SimStack[] = [];
  readonly orgs: string[] = [];
  /** Lookups by stack and by org, so a world of 10,000 stacks answers each request in O(1). */
  private readonly byKey = new Map<string, SimStack>();
  private readonly byOrg = new Map<string, SimStack[]>();
  private clock: number;
  private readonly running: Array<{ readonly stack: SimStack; readonly update: SimUpdate }> = [];
  private readonly liveRng: Prng;
  private readonly tickEvents: number;
  /** Called when a new update (or preview) starts running and when it finishes (webhooks, benchmarks). */
  onUpdate: ((phase: 'started' | 'finished', stack: SimStack, update: SimUpdate) => void) | undefined;

  constructor(options: WorldOptions) {
    const scale = { ...DEFAULT_SCALE, ...options.scale };
    this.clock = options.nowSeconds;
    this.tickEvents = Math.max(1, options.tickEvents ?? 4);
    const root = createPrng(hashString(`pulumi-update-exporter:${options.seed}`));
    this.liveRng = createPrng(hashString(`live:${options.seed}`));

    for (let o = 0; o < Math.max(1, scale.orgs); o++) {
      const org = nameAt(ORG_NAMES, o);
      this.orgs.push(org);
      const orgRng = root.fork(org);
      const users = this.usersFor(org, orgRng);
      const orgStacks: SimStack[] = [];
      for (let p = 0; p < scale.projectsPerOrg; p++) {
        const project = nameAt(PROJECT_NAMES, p + o * 3);
        for (let s = 0; s < scale.stacksPerProject; s++) {
          const stackName = nameAt(STACK_NAMES, s);
          const showcase = o === 0 && p === 0 && s === 0;
          const neverUpdated = p === scale.projectsPerOrg - 1 && s === scale.stacksPerProject - 1 && !showcase;
          orgStacks.push(
            this.generateStack(org, project, stackName, orgRng.fork(`${project}/${stackName}`), users, scale, showcase, neverUpdated, options.nowSeconds),
          );
        }
      }
      if (o === 0) {
        const dir = options.fixturesDir ?? defaultFixturesDir();
        if (options.fixtures === true && dir === undefined) {
          throw new SimulatorError('SIMULATOR_FIXTURES_MISSING', 'simulator fixtures requested but fixtures/pulumi-samples was not found next to package.json');
        }
        if (options.fixtures !== false && dir !== undefined) {
          const rng = orgRng.fork('fixtures');
          const context = this.contextFor(org, FIXTURE_PROJECT, rng, users, false);
          orgStacks.push(loadFixtureStack({ org, dir, nowSeconds: options.nowSeconds, rng, context }));
        }
      }
      orgStacks.sort((a, b) => (a.project === b.project ? (a.stack < b.stack ? -1 : 1) : a.project < b.project ? -1 : 1));
      for (const s of orgStacks) {
        this.stacks.push(s);
        this.byKey.set(keyOf(s), s);
      }
      this.byOrg.set(org, orgStacks);
    }
  }

  /** The stacks of one org in list order (empty for an unknown org). */
  stacksOf(org: string): readonly SimStack[] {
    return this.byOrg.get(org) ?? [];
  }

  get nowSeconds(): number {
    return this.clock;
  }

  private usersFor(org: string, rng: Prng): { users: UserInfo[]; bot: UserInfo } {
    const start = rng.int(0, PEOPLE.length - 1);
    const users: UserInfo[] = [];
    for (let i = 0; i < 4; i++) {
      const [name, login] = PEOPLE[(start + i) % PEOPLE.length] ?? ['Someone', 'someone'];
      users.push({
        name,
        githubLogin: login,
        avatarUrl: `https://avatars.example.com/u/${hashString(login) % 100000}?v=4`,
        ...(i % 2 === 0 ? { email: `${login}@example.com` } : {}),
      });
    }
    const bot: UserInfo = { name: `${org} CI`, githubLogin: `${org}-ci`, avatarUrl: `https://avatars.example.com/u/${hashString(org) % 100000}?v=4` };
    return { users, bot };
  }

  private contextFor(org: string, project: string, rng: Prng, who: { users: UserInfo[]; bot: UserInfo }, policyPack: boolean): StackContext {
    const region = rng.pick(['us-west-2', 'us-east-1', 'eu-west-1']);
    const settings = JSON.stringify({ replicas: rng.int(1, 5), logLevel: 'info' });
    const ciphertext = `v1:${Buffer.from(rng.hex(48), 'hex').toString('base64')}`;
    return {
      repoOwner: org,
      repoName: `${project}-infra`,
      region,
      users: who.users,
      ciBot: who.bot,
      policyPack,
      config: {
        'aws:region': { string: region, secret: false, object: false },
        [`${project}:dbPassword`]: { string: ciphertext, secret: true, object: false },
        [`${project}:settings`]: { string: settings, secret: false, object: true },
      },
      preludeConfig: { 'aws:region': region, [`${project}:dbPassword`]: '[secret]', [`${project}:settings`]: settings },
    };
  }

  private generateStack(
    org: string,
    project: string,
    stackName: string,
    rng: Prng,
    who: { users: UserInfo[]; bot: UserInfo },
    scale: SimulatorScale,
    showcase: boolean,
    neverUpdated: boolean,
    now: number,
  ): SimStack {
    const policyPack = showcase || rng.chance(0.25);
    const context = this.contextFor(org, project, rng, who, policyPack);
    const targetSize = Math.max(1, Math.round(scale.resourcesPerStack * (0.7 + rng.next() * 0.6)));
    const builder = createProgramBuilder(project, stackName, context.region, rng);
    const stack: SimStack = {
      org,
      project,
      stack: stackName,
      id: rng.uuid(),
      isFixture: false,
      context,
      tags: {
        'pulumi:project': project,
        'pulumi:runtime': 'nodejs',
        'pulumi:description': `${project} infrastructure`,
        'vcs:owner': context.repoOwner,
        'vcs:repo': context.repoName,
        'vcs:kind': 'github.com',
      },
      updates: [],
      previews: [],
      program: buildInitialProgram(builder, targetSize),
      state: { resources: new Map(), pendingDeletes: [] },
      rng,
      builder,
      targetSize,
    };
    if (neverUpdated) return stack;

    const random = Math.max(1, Math.round(scale.updatesPerStack * (0.5 + rng.next())));
    const specs: UpdateSpec[] = showcase ? [...SHOWCASE] : [];
    while (specs.length < (showcase ? Math.max(SHOWCASE.length, scale.updatesPerStack) : random)) specs.push(this.randomSpec(rng, specs.length === 0));
    const previewSpecs: Array<UpdateSpec & { wireKind?: string }> = showcase
      ? [...SHOWCASE_PREVIEWS]
      : Array.from({ length: rng.weighted<number>([[0, 0.35], [1, 0.4], [2, 0.25]]) }, () => this.randomPreviewSpec(rng));

    // Spread the history over the last ~5 days, oldest first, never overlapping.
    const windowStart = now - 5 * DAY;
    const gap = Math.floor((5 * DAY - 3_600) / (specs.length + previewSpecs.length + 1));
    let t = windowStart + Math.floor(gap * (0.2 + rng.next() * 0.6));
    for (const spec of specs) {
      const u = this.planNext(stack, spec, { startTime: t, timing: 'normal' });
      stack.updates.push(u);
      t = Math.max(u.endTime + 60, t + Math.floor(gap * (0.6 + rng.next() * 0.8)));
    }
    for (const spec of previewSpecs) {
      const u = this.planNext(stack, spec, { startTime: t, timing: 'normal', preview: true, ...(spec.wireKind ? { wireKind: spec.wireKind } : {}) });
      stack.previews.push(u);
      t = Math.max(u.endTime + 60, t + Math.floor(gap * (0.3 + rng.next() * 0.5)));
    }
    return stack;
  }

  private randomSpec(rng: Prng, first: boolean): UpdateSpec {
    const kind = first ? 'update' : rng.weighted<PlanKind>([['update', 0.78], ['refresh', 0.17], ['destroy', 0.05]]);
    const result = rng.weighted<PlannedResult>([['succeeded', 0.8], ['failed', 0.14], ['cancelled', 0.06]]);
    const failureMode = rng.weighted<FailureMode>([['resource', 0.6], ['program', 0.2], ['policy', 0.2]]);
    return { kind, result, failureMode };
  }

  private randomPreviewSpec(rng: Prng): UpdateSpec {
    const kind = rng.weighted<PlanKind>([['update', 0.85], ['refresh', 0.1], ['destroy', 0.05]]);
    const result = rng.weighted<PlannedResult>([['succeeded', 0.85], ['failed', 0.15]]);
    return { kind, result, failureMode: 'resource', force: 'update' };
  }

  /** Plans the stack's next update (or preview) from its current program and state. */
  private planNext(
    stack: SimStack,
    spec: UpdateSpec,
    how: { startTime: number; timing: 'normal' | 'fast'; preview?: boolean; wireKind?: string; earlyStopsAvoided?: boolean },
  ): SimUpdate {
    const rng = stack.rng;
    const builder = stack.builder;
    if (!rng || !builder) throw new Error(`stack ${stack.org}/${stack.project}/${stack.stack} cannot run new updates`);
    const preview = how.preview === true;
    const target = stack.targetSize ?? 10;
    let program = stack.program;
    // The program changes before an update (a preview shows a change that is not deployed yet).
    if (spec.kind === 'update' && stack.state.resources.size > 0) {
      program = mutateProgram(builder, stack.program, target, spec.force ? { force: spec.force } : {});
      if (!preview) stack.program = program;
    }
    const version = preview ? stack.updates.length : stack.updates.length + 1;
    const planned = planUpdate({
      project: stack.project,
      stack: stack.stack,
      kind: spec.kind,
      preview,
      result: spec.result,
      ...(spec.failureMode ? { failureMode: spec.failureMode } : {}),
      program,
      state: stack.state,
      rng,
      startTime: how.startTime,
      policyPack: stack.context.policyPack,
      timing: how.timing,
      preludeConfig: stack.context.preludeConfig,
      ...(spec.drift ? { forceDrift: true } : {}),
      ...(how.earlyStopsAvoided ? { lateStops: true } : {}),
      serial: builder.next,
      buildLabel: String(1000 + stack.updates.length),
    });
    if (!preview) stack.state = planned.state;
    const meta = updateMetadata(stack.context, rng);
    const policyRun = stack.context.policyPack && spec.kind === 'update';
    return {
      updateId: rng.uuid(),
      kind: preview ? (how.wireKind ?? previewKind(spec.kind, rng)) : spec.kind,
      isPreview: preview,
      version,
      startTime: how.startTime,
      endTime: planned.endTime,
      result: spec.result,
      message: meta.message,
      environment: meta.environment,
      config: stack.context.config,
      requestedBy: meta.requestedBy,
      ...(meta.githubCommitInfo ? { githubCommitInfo: meta.githubCommitInfo } : {}),
      ...(policyRun ? { policyPacks: [{ ...POLICY_PACK }] } : {}),
      resourceChanges: planned.resourceChanges,
      ...(preview ? {} : { resourceCount: planned.state.resources.size + planned.state.pendingDeletes.length }),
      events: planned.events,
      operations: planned.operations,
      policyViolations: planned.policyViolations,
      visible: planned.events.length,
      complete: true,
    };
  }

  findStack(ref: StackRef): SimStack | undefined {
    return this.byKey.get(keyOf(ref));
  }

  private requireStack(ref: StackRef): SimStack {
    const s = this.findStack(ref);
    if (!s) throw new SimulatorError('SIMULATOR_CONTROL_INVALID', `simulator has no stack ${ref.org}/${ref.project}/${ref.stack}`);
    return s;
  }

  /** The newest version; previews of this version are the "latest previews". */
  latestVersion(stack: SimStack): number {
    return stack.updates.length;
  }

  latestPreviews(stack: SimStack): SimUpdate[] {
    return this.previewsOf(stack, this.latestVersion(stack));
  }

  /** Previews run against one stack version, oldest first. */
  previewsOf(stack: SimStack, version: number): SimUpdate[] {
    return stack.previews.filter((p) => p.version === version);
  }

  isRunning(update: SimUpdate): boolean {
    return !update.complete;
  }

  private lastEnd(stack: SimStack): number {
    let end = 0;
    for (const u of [...stack.updates, ...stack.previews]) end = Math.max(end, u.endTime, u.startTime);
    return end;
  }

  private begin(stack: SimStack, spec: UpdateSpec, preview: boolean, timing: 'normal' | 'fast'): SimUpdate {
    if (stack.isFixture) throw new SimulatorError('SIMULATOR_CONTROL_INVALID', 'the fixture stack replays recorded updates only; start updates on a generated stack');
    if (this.running.some((r) => r.stack === stack)) {
      throw new SimulatorError('SIMULATOR_CONTROL_INVALID', `an update is already running on ${stack.org}/${stack.project}/${stack.stack}`);
    }
    const startTime = Math.max(this.clock, this.lastEnd(stack) + 30);
    const update = this.planNext(stack, { force: 'update', ...spec }, { startTime, timing, preview, earlyStopsAvoided: true });
    update.visible = 0;
    update.complete = false;
    (preview ? stack.previews : stack.updates).push(update);
    this.running.push({ stack, update });
    this.onUpdate?.('started', stack, update);
    return update;
  }

  startUpdate(ref: StackRef, opts: StartOptions = {}): string {
    return this.start(ref, opts, false);
  }

  /** Starts a preview of the latest version (kind Pupdate/Prefresh/Pdestroy/preview); a preview cannot be cancelled. */
  startPreview(ref: StackRef, opts: StartOptions = {}): string {
    if (opts.result === 'cancelled') throw new SimulatorError('SIMULATOR_CONTROL_INVALID', 'a preview succeeds or fails; it is not cancelled');
    return this.start(ref, opts, true);
  }

  private start(ref: StackRef, opts: StartOptions, preview: boolean): string {
    const kind = opts.kind ?? 'update';
    const result = opts.result ?? 'succeeded';
    if (!['update', 'refresh', 'destroy'].includes(kind)) throw new SimulatorError('SIMULATOR_CONTROL_INVALID', `unknown update kind "${String(kind)}"`);
    if (!['succeeded', 'failed', 'cancelled'].includes(result)) throw new SimulatorError('SIMULATOR_CONTROL_INVALID', `unknown update result "${String(result)}"`);
    const stack = this.requireStack(ref);
    const rng = stack.rng;
    const failureMode = preview ? 'resource' : rng ? rng.weighted<FailureMode>([['resource', 0.7], ['program', 0.15], ['policy', 0.15]]) : 'resource';
    return this.begin(stack, { kind, result, failureMode }, preview, 'normal').updateId;
  }

  private finish(index: number): void {
    const entry = this.running[index];
    if (!entry) return;
    const u = entry.update;
    u.visible = u.events.length;
    u.complete = true;
    this.clock = Math.max(this.clock, u.endTime);
    this.running.splice(index, 1);
    this.onUpdate?.('finished', entry.stack, u);
  }

  /** Reveals the next events of every running update; in live mode may also start new ones. */
  tick(live = false): void {
    for (let i = 0; i < this.running.length; ) {
      const u = this.running[i]?.update;
      if (!u) break;
      u.visible = Math.min(u.events.length, u.visible + this.tickEvents);
      const last = u.events[u.visible - 1];
      if (last) this.clock = Math.max(this.clock, last.timestamp);
      if (u.visible === u.events.length) this.finish(i);
      else i++;
    }
    if (live) this.startLiveActivity();
  }

  private startLiveActivity(): void {
    const rng = this.liveRng;
    if (this.running.length >= 3 || !rng.chance(0.5)) return;
    const busy = new Set(this.running.map((r) => r.stack));
    const idle = this.stacks.filter((s) => !s.isFixture && !busy.has(s));
    if (idle.length === 0) return;
    const stack = rng.pick(idle);
    const kind = rng.weighted<PlanKind>([['update', 0.8], ['refresh', 0.15], ['destroy', 0.05]]);
    const result = rng.weighted<PlannedResult>([['succeeded', 0.8], ['failed', 0.15], ['cancelled', 0.05]]);
    const failureMode = rng.weighted<FailureMode>([['resource', 0.6], ['program', 0.2], ['policy', 0.2]]);
    const preview = stack.updates.length > 0 && rng.chance(0.2);
    this.begin(stack, { kind, result, failureMode }, preview, 'fast');
  }

  completeUpdate(ref: StackRef, updateId: string): void {
    const stack = this.requireStack(ref);
    const known = [...stack.updates, ...stack.previews].find((u) => u.updateId === updateId);
    if (!known) throw new SimulatorError('SIMULATOR_CONTROL_INVALID', `stack ${ref.org}/${ref.project}/${ref.stack} has no update ${updateId}`);
    const i = this.running.findIndex((r) => r.update === known);
    if (i >= 0) this.finish(i);
  }

  advanceClock(seconds: number): void {
    if (Number.isFinite(seconds) && seconds > 0) this.clock += Math.floor(seconds);
  }

  /** Live mode follows the wall clock (never backwards). */
  syncClock(wallSeconds: number): void {
    this.clock = Math.max(this.clock, Math.floor(wallSeconds));
  }

  /** Resources in the stack after its newest completed history update (0 when never updated). */
  resourceCount(stack: SimStack): number {
    for (let i = stack.updates.length - 1; i >= 0; i--) {
      const u = stack.updates[i];
      if (u?.complete) return u.resourceCount ?? 0;
    }
    return 0;
  }

  lastUpdate(stack: SimStack): number | undefined {
    return stack.updates[stack.updates.length - 1]?.startTime;
  }

  truth(): SimulatorTruth {
    return {
      stacks: this.stacks.map((s) => {
        const last = this.lastUpdate(s);
        return {
          org: s.org,
          project: s.project,
          stack: s.stack,
          resourceCount: this.resourceCount(s),
          ...(last === undefined ? {} : { lastUpdate: last }),
          updates: s.updates.map(truthOf),
          previews: this.latestPreviews(s).map(truthOf),
          allPreviews: s.previews.map(truthOf),
        };
      }),
    };
  }
}

function keyOf(ref: StackRef): string {
  return `${ref.org}\n${ref.project}\n${ref.stack}`;
}

export function historyResult(u: SimUpdate): 'succeeded' | 'failed' | 'in-progress' {
  if (!u.complete) return 'in-progress';
  return u.result === 'succeeded' ? 'succeeded' : 'failed';
}

function truthOf(u: SimUpdate): TruthUpdate {
  return {
    updateId: u.updateId,
    version: u.version,
    kind: u.kind,
    historyResult: historyResult(u),
    result: u.complete ? u.result : 'in-progress',
    startTime: u.startTime,
    ...(u.complete ? { endTime: u.endTime } : {}),
    resourceChanges: { ...u.resourceChanges },
    resourceOperations: u.operations === null ? null : u.operations.map((o) => ({ ...o })),
    policyViolations: u.policyViolations.map((v) => ({ ...v })),
    eventCount: u.events.length,
  };
}
