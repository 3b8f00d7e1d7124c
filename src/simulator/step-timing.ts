import { RESOURCE_TYPES } from './catalog.js';
import type { Prng } from './prng.js';
import type { PlanInput, SimResource } from './sim-model.js';

/**
 * Timing of a planned update: how long a step takes, and the discrete-event loop that starts
 * steps once their dependencies are done (up to a parallelism limit) and finishes them in
 * time order.
 */

const PARALLELISM = 8;

export function stepSeconds(r: SimResource, rng: Prng, timing: PlanInput['timing'], factor = 1): number {
  if (r.role === 'stack' || r.role === 'component') return 0;
  if (r.role === 'provider') return rng.int(0, 1);
  const spec = RESOURCE_TYPES[r.specKey ?? ''];
  const [min, max] = spec ? spec.seconds : [1, 3];
  const s = Math.round(rng.int(min, max) * factor);
  return timing === 'fast' ? Math.min(s, rng.int(0, 2)) : s;
}

/** What the loop reads of a step. */
export interface TimedStep {
  readonly deps: readonly number[];
  started: boolean;
  done: boolean;
  failed: boolean;
}

export interface Running<S extends TimedStep> {
  readonly step: S;
  readonly end: number;
}

/** The clock and in-flight steps of one simulated update; `stopping` ends the starting of new steps. */
export interface Timeline<S extends TimedStep> {
  stopping: 'failed' | 'cancelled' | null;
  t: number;
  running: Array<Running<S>>;
}

export interface StepHandlers<S extends TimedStep> {
  /** Called when a step's dependencies are done; it either finishes the step at once or pushes it onto `running`. */
  start(step: S): void;
  /** Called at the step's end time. */
  finish(step: S): void;
}

/** Runs the steps to the end (or until stopping and nothing is in flight). */
export function runTimeline<S extends TimedStep>(steps: readonly S[], timeline: Timeline<S>, handlers: StepHandlers<S>): void {
  const depsDone = (s: S) => s.deps.every((d) => steps[d]?.done === true && steps[d]?.failed === false);
  let firstOpen = 0;
  for (;;) {
    while (timeline.stopping === null && timeline.running.length < PARALLELISM) {
      while (firstOpen < steps.length && steps[firstOpen]?.started) firstOpen++;
      let next: S | undefined;
      for (let i = firstOpen; i < steps.length; i++) {
        const s = steps[i];
        if (s && !s.started && depsDone(s)) {
          next = s;
          break;
        }
      }
      if (!next) break;
      handlers.start(next);
    }
    if (timeline.running.length === 0) break;
    const nextEnd = Math.min(...timeline.running.map((r) => r.end));
    timeline.t = nextEnd;
    const finishing = timeline.running.filter((r) => r.end === nextEnd);
    timeline.running = timeline.running.filter((r) => r.end !== nextEnd);
    for (const { step } of finishing) handlers.finish(step);
  }
  if (timeline.stopping === null && steps.some((s) => !s.started)) throw new Error('simulator plan has a dependency cycle');
}
