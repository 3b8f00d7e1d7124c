import { MANDATORY_POLICY, POLICY_PACK, PROGRAM_OUTPUT_LINES, RESOURCE_TYPES, STDERR_LINES } from './catalog.js';
import { ERROR_PREFIX, EventLog } from './event-log.js';
import { planSteps, type MutableState, type Step } from './plan-steps.js';
import type { FailureMode, OperationRecord, PlanInput, PlannedUpdate } from './sim-model.js';
import { runTimeline, type Timeline } from './step-timing.js';

/**
 * Plans one update (or preview) of a stack and produces its engine-event stream by a small
 * discrete-event simulation: steps (plan-steps.ts) start when their dependencies are done and
 * take time (step-timing.ts), and their events (event-log.ts) follow the rules in
 * docs/simulator.md. The plan also records, independently of the events, what the truth of
 * the update is (operations, counted changes, violations).
 */
export function planUpdate(input: PlanInput): PlannedUpdate {
  return new UpdateRun(input, planSteps(input)).run();
}

const COUNTED_OPS = new Set(['same', 'create', 'update', 'delete', 'replace', 'import', 'discard']);

/** How the update ends, decided up front so the stream is built in one pass. */
interface Outcome {
  readonly mode: FailureMode | undefined;
  /** Index of the step that fails (resource failures), else -1. */
  readonly failing: number;
  /** Index of the step a mandatory policy blocks, else -1. */
  readonly policyBlocked: number;
  /** Started-step count at which the program fails or the update is cancelled, else -1. */
  readonly programFailAt: number;
  readonly cancelAt: number;
  readonly warnStep: Step | undefined;
  readonly debugStep: Step | undefined;
}

/** Policies analyze a resource before its first step; deletes are not analyzed. */
function analyzed(s: Step): boolean {
  return s.res.role === 'resource' && s.op !== 'delete' && s.op !== 'delete-replaced' && s.op !== 'replace';
}

function decideOutcome(input: PlanInput, steps: readonly Step[], policyRun: boolean): Outcome {
  const { rng } = input;
  let mode: FailureMode | undefined = input.result === 'failed' ? (input.failureMode ?? 'resource') : undefined;
  const realWork = steps.filter((s) => s.custom && s.op !== 'same' && s.op !== 'replace');
  if (mode === 'policy' && !policyRun) mode = 'resource';
  if (mode === 'resource' && realWork.length === 0) mode = 'program';
  const failing = mode === 'resource' ? rng.pick(realWork).idx : -1;
  const policyTargets = steps.filter(analyzed);
  if (mode === 'policy' && policyTargets.length === 0) mode = 'program';
  const policyBlocked = mode === 'policy' ? rng.pick(policyTargets).idx : -1;
  const earliest = input.lateStops ? Math.ceil(steps.length / 3) : 0;
  const programFailAt = mode === 'program' ? rng.int(earliest, Math.max(earliest, Math.ceil(steps.length / 2))) : -1;
  const cancelAt = input.result === 'cancelled' ? rng.int(earliest, Math.max(earliest, Math.ceil(steps.length * 0.6))) : -1;
  const customs = steps.filter((s) => s.custom);
  const warnStep = customs.length > 0 && rng.chance(0.25) ? rng.pick(customs) : undefined;
  const debugStep = steps.length > 0 && rng.chance(0.06) ? rng.pick(steps) : undefined;
  return { mode, failing, policyBlocked, programFailAt, cancelAt, warnStep, debugStep };
}

class UpdateRun {
  private readonly timeline: Timeline<Step> = { stopping: null, t: 0, running: [] };
  private readonly log: EventLog;
  private readonly outcome: Outcome;
  private readonly policyRun: boolean;
  private readonly stackStep: Step | undefined;
  private readonly stackUrn: string | undefined;
  private readonly changes: Record<string, number> = {};
  private readonly state: MutableState;
  private readonly registered = new Set<string>();
  private readonly childSteps = new Map<string, Step[]>();
  private readonly componentStep = new Map<string, Step>();
  private maybeCorrupt = false;
  private completedSteps = 0;
  private startedCount = 0;

  constructor(
    private readonly input: PlanInput,
    private readonly steps: Step[],
  ) {
    this.log = new EventLog(input.startTime, this.timeline, input.preview);
    this.policyRun = input.policyPack && input.kind === 'update';
    this.stackStep = steps.find((s) => s.res.role === 'stack' && s.op !== 'delete');
    this.stackUrn = steps.find((s) => s.res.role === 'stack')?.res.urn ?? input.program.find((r) => r.role === 'stack')?.urn;
    this.state = { resources: new Map(input.state.resources), pending: [...input.state.pendingDeletes] };
    this.outcome = decideOutcome(input, steps, this.policyRun);
    for (const s of steps) {
      if (s.phase2) continue;
      const list = this.childSteps.get(s.res.parentUrn) ?? [];
      list.push(s);
      this.childSteps.set(s.res.parentUrn, list);
      if (!s.custom) this.componentStep.set(s.res.urn, s);
    }
  }

  run(): PlannedUpdate {
    const { input, timeline, log } = this;
    if (this.policyRun) log.emit('policyLoadEvent', {});
    log.emit('preludeEvent', { config: input.preludeConfig });
    timeline.t += input.rng.int(0, 1);
    this.checkTriggers();
    runTimeline(this.steps, timeline, {
      start: (s) => this.startStep(s),
      finish: (s) => (s.idx === this.outcome.failing ? this.fail(s) : this.succeed(s)),
    });
    this.finishStream();
    return this.result();
  }

  /** A component calls registerOutputs once its children are done; the stack's comes at the very end. */
  private maybeRegister(urn: string): void {
    const comp = this.componentStep.get(urn);
    if (!comp || comp.res.role === 'stack' || this.registered.has(urn) || !comp.done || !comp.res.registersOutputs) return;
    if (this.timeline.stopping === 'cancelled') return;
    const kids = this.childSteps.get(urn) ?? [];
    const ready = kids.every((k) => k.done && !k.failed && (k.custom || this.registered.has(k.res.urn) || !k.res.registersOutputs));
    if (!ready) return;
    this.registered.add(urn);
    this.log.resOutputs(comp);
    this.maybeRegister(comp.res.parentUrn);
  }

  private succeed(s: Step): void {
    s.done = true;
    this.completedSteps++;
    if (s.countAs !== undefined && (s.logical || s.op === 'refresh') && COUNTED_OPS.has(s.countAs)) {
      this.changes[s.countAs] = (this.changes[s.countAs] ?? 0) + 1;
    }
    if (!this.input.preview) s.apply(this.state);
    // Components and the stack get no outputs at step end in an update, except deletes.
    if (s.custom || s.op === 'delete' || this.input.preview) this.log.resOutputs(s);
    this.maybeRegister(s.res.urn);
    this.maybeRegister(s.res.parentUrn);
  }

  private fail(s: Step): void {
    const { rng } = this.input;
    s.done = true;
    s.failed = true;
    this.log.stepError(s, rng);
    // A failed step in a preview reports only the diagnostic.
    if (!this.input.preview) {
      const status = rng.weighted<number>([
        [0, 7],
        [1, 2],
        [2, 1],
      ]);
      if (status === 2) this.maybeCorrupt = true;
      this.log.resOpFailed(s, status, this.completedSteps);
    }
    this.timeline.stopping = 'failed';
    // Steps in flight when the error hit mostly finish; some are cut off (the CLI was stopped).
    this.timeline.running = this.timeline.running.filter(() => !rng.chance(0.35));
  }

  /** Cancellation and program failures strike after a planned number of started steps. */
  private checkTriggers(): void {
    if (this.timeline.stopping !== null) return;
    if (this.startedCount === this.outcome.cancelAt) {
      this.timeline.stopping = 'cancelled';
      this.timeline.running = [];
    } else if (this.startedCount === this.outcome.programFailAt) {
      this.log.programFailure(this.input.kind, this.stackUrn);
      this.timeline.stopping = 'failed';
    }
  }

  /** Policy checks before the step; false when a mandatory policy blocks it. */
  private passesPolicies(s: Step): boolean {
    if (!this.policyRun || s.res.role !== 'resource') return true;
    if (s.idx === this.outcome.policyBlocked) {
      // A mandatory violation stops the step before it runs: no pre event for it.
      this.log.policy(s.res.urn, MANDATORY_POLICY.name, MANDATORY_POLICY.message, 'mandatory', MANDATORY_POLICY.severity);
      s.blocked = true;
      this.timeline.stopping = 'failed';
      return false;
    }
    const advisory = RESOURCE_TYPES[s.res.specKey ?? '']?.advisoryPolicy;
    if (advisory && analyzed(s) && this.input.rng.chance(0.5)) {
      this.log.policy(s.res.urn, advisory.name, advisory.message, 'advisory', advisory.severity);
    }
    return true;
  }

  /** The diagnostics a starting step may print: deprecation warnings, debug lines, program output, progress. */
  private startDiagnostics(s: Step): void {
    const { input, log, outcome } = this;
    const { rng } = input;
    if (s === outcome.warnStep) {
      log.diag({
        urn: s.res.urn,
        prefix: '<{%fg 3%}>warning: <{%reset%}>',
        message: `<{%reset%}>${s.res.type} is deprecated: it will be removed in the next major version of the provider<{%reset%}>\n`,
        severity: 'warning',
      });
    }
    if (s === outcome.debugStep) log.diag({ urn: s.res.urn, message: `Registering resource: t=${s.res.type}, name=${s.res.name}\n`, severity: 'debug' });
    if (s === this.stackStep && !input.preview && input.kind === 'update') {
      if (rng.chance(0.35)) {
        const line = rng.pick(PROGRAM_OUTPUT_LINES).replace('{build}', input.buildLabel).replace('{stack}', input.stack);
        log.diag({ urn: s.res.urn, message: `${line}\n`, severity: 'info' });
      }
      if (rng.chance(0.1)) log.diag({ urn: s.res.urn, message: `${rng.pick(STDERR_LINES)}\n`, severity: 'info#err' });
    }
    if (s.duration >= 60) {
      const verb = s.op === 'delete' || s.op === 'delete-replaced' ? 'deleting' : 'creating';
      log.diag({ urn: s.res.urn, message: `Still ${verb}... [1m0s elapsed]`, severity: 'info', ephemeral: true });
    }
  }

  private startStep(s: Step): void {
    s.started = true;
    if (!this.passesPolicies(s)) return;
    this.log.resourcePre(s);
    this.startedCount++;
    this.startDiagnostics(s);
    if (s.instant || s.duration === 0) {
      if (s.idx === this.outcome.failing) this.fail(s);
      else this.succeed(s);
    } else {
      this.timeline.running.push({ step: s, end: this.timeline.t + s.duration });
    }
    this.checkTriggers();
  }

  /** Stack outputs, the final error, the policy summary and the summary event. */
  private finishStream(): void {
    const { input, timeline, log, stackStep } = this;
    const { rng } = input;
    // Stack outputs come last: on success, sometimes after a step failure, never when cancelled.
    const stopping = timeline.stopping;
    if (stackStep?.done && stopping !== 'cancelled' && (stopping === null || (this.outcome.mode === 'resource' && rng.chance(0.5)))) {
      timeline.t += rng.int(0, 1);
      log.resOutputs(stackStep);
    }
    if (stopping === 'failed') {
      const what = input.preview ? 'preview' : input.kind;
      log.diag({ prefix: ERROR_PREFIX, message: `<{%reset%}>${what} failed<{%reset%}>\n`, severity: 'error' });
    }
    if (this.policyRun && stopping !== 'cancelled') log.policySummary();
    timeline.t += rng.int(0, 1);
    const summaryResult = stopping === 'cancelled' ? 'canceled' : stopping === 'failed' ? 'failed' : 'succeeded';
    const wanted = input.result === 'cancelled' ? 'canceled' : input.result;
    if (summaryResult !== wanted) throw new Error(`simulator plan ended ${summaryResult}, wanted ${wanted}`);
    log.emit('summaryEvent', {
      maybeCorrupt: this.maybeCorrupt,
      durationSeconds: Math.max(1, timeline.t + 1),
      resourceChanges: { ...this.changes },
      PolicyPacks: this.policyRun ? { [POLICY_PACK.name]: String(POLICY_PACK.version) } : {},
      isPreview: input.preview,
      result: summaryResult,
    });
  }

  private result(): PlannedUpdate {
    const { input } = this;
    const endTime = input.startTime + this.timeline.t + input.rng.int(0, 2);
    const operations: OperationRecord[] = this.steps
      .filter((s) => s.preIndex !== undefined)
      .sort((a, b) => (a.preIndex ?? 0) - (b.preIndex ?? 0))
      .map((s) => ({
        op: s.op,
        type: s.res.type,
        result: s.terminal === 'outputs' ? 'succeeded' : s.terminal === 'failed' ? 'failed' : 'interrupted',
      }));
    return {
      events: this.log.events,
      endTime,
      operations,
      policyViolations: this.log.violations,
      resourceChanges: this.changes,
      state: input.preview ? input.state : { resources: this.state.resources, pendingDeletes: this.state.pending },
      maybeCorrupt: this.maybeCorrupt,
    };
  }
}
