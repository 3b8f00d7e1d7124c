import type { ResOpFailedEvent, ResOutputsEvent, ResourcePreEvent } from '../domain/engine-event.js';

/** One engine step: a resourcePreEvent and, when it finished, its terminal event. */
export interface Step {
  /** 0-based position of the resourcePreEvent among the update's events. */
  readonly index: number;
  readonly pre: ResourcePreEvent;
  terminal?: ResOutputsEvent | ResOpFailedEvent;
  /** Position of the terminal event. */
  terminalIndex?: number;
}

/**
 * Pairs pre events with their outputs/failed events (shared pulumi-api.md 6.5). URNs are not
 * unique within an update (replacements, refresh of a pending-delete copy), so each URN
 * has a FIFO queue of open steps; a terminal event closes the oldest open step with the
 * same op, else the oldest open `refresh` step (refresh outputs carry the result op),
 * else the oldest open step.
 */
export class StepTracker {
  private readonly open = new Map<string, Step[]>();
  private readonly byUrn = new Map<string, Step[]>();
  readonly steps: Step[] = [];

  begin(pre: ResourcePreEvent, index: number): Step {
    const step: Step = { index, pre };
    const urn = pre.metadata.urn;
    const queue = this.open.get(urn);
    if (queue) queue.push(step);
    else this.open.set(urn, [step]);
    const all = this.byUrn.get(urn);
    if (all) all.push(step);
    else this.byUrn.set(urn, [step]);
    this.steps.push(step);
    return step;
  }

  /** Closes the matching open step; undefined when none is open (e.g. a component's second outputs event in a preview). */
  finish(terminal: ResOutputsEvent | ResOpFailedEvent, index: number): Step | undefined {
    const queue = this.open.get(terminal.metadata.urn);
    if (!queue || queue.length === 0) return undefined;
    let at = queue.findIndex((s) => s.pre.metadata.op === terminal.metadata.op);
    if (at < 0) at = queue.findIndex((s) => s.pre.metadata.op === 'refresh');
    if (at < 0) at = 0;
    const [step] = queue.splice(at, 1);
    if (!step) return undefined;
    step.terminal = terminal;
    step.terminalIndex = index;
    return step;
  }

  /**
   * The step a URN-scoped event belongs to: the newest open step of that URN, else none (the
   * event goes to the root). A finished step takes no more events, so its span is final when
   * its terminal event arrives and can be sent while the update still runs.
   */
  stepFor(urn: string): Step | undefined {
    const queue = this.open.get(urn);
    return queue && queue.length > 0 ? queue[queue.length - 1] : undefined;
  }

  /** All steps of a URN in stream order (empty when the URN had none). */
  stepsOf(urn: string): readonly Step[] {
    return this.byUrn.get(urn) ?? [];
  }
}
