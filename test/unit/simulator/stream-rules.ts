/**
 * An independent reading of an engine-event stream by the documented rules
 * (shared pulumi-api.md 4.4 and 6.5), used to check the simulator's own plan against
 * the events it serves. Deliberately not the exporter's conversion code.
 */

export type RawEvent = Readonly<Record<string, unknown>> & { readonly timestamp: number; readonly type: string };

export interface StreamStep {
  readonly op: string;
  readonly type: string;
  readonly urn: string;
  readonly custom: boolean;
  readonly logical: boolean;
  readonly preIndex: number;
  terminal: 'outputs' | 'failed' | null;
  terminalOp?: string;
  terminalIndex?: number;
}

const COUNTED = new Set(['same', 'create', 'update', 'delete', 'replace', 'import', 'discard']);

export function payload(e: RawEvent): Record<string, unknown> {
  return (e[e.type] ?? {}) as Record<string, unknown>;
}

export function meta(e: RawEvent): Record<string, unknown> {
  return (payload(e)['metadata'] ?? {}) as Record<string, unknown>;
}

function isCustom(m: Record<string, unknown>): boolean {
  const state = (m['new'] ?? m['old']) as Record<string, unknown> | null | undefined;
  return state?.['custom'] === true;
}

/** Pairs every pre event with its terminal event: per-URN FIFO, same op first, then an open refresh. */
export function pairSteps(events: readonly RawEvent[]): StreamStep[] {
  const steps: StreamStep[] = [];
  const open = new Map<string, StreamStep[]>();
  events.forEach((e, i) => {
    if (e.type === 'resourcePreEvent') {
      const m = meta(e);
      const step: StreamStep = {
        op: String(m['op']),
        type: String(m['type']),
        urn: String(m['urn']),
        custom: isCustom(m),
        logical: m['logical'] === true,
        preIndex: i,
        terminal: null,
      };
      steps.push(step);
      const q = open.get(step.urn) ?? [];
      q.push(step);
      open.set(step.urn, q);
    } else if (e.type === 'resOutputsEvent' || e.type === 'resOpFailedEvent') {
      const m = meta(e);
      const urn = String(m['urn']);
      const op = String(m['op']);
      const q = open.get(urn) ?? [];
      const at = q.findIndex((s) => s.op === op) >= 0 ? q.findIndex((s) => s.op === op) : q.findIndex((s) => s.op === 'refresh');
      const step = q[at];
      if (!step) return; // e.g. a component's registerOutputs after its step already closed (previews)
      q.splice(at, 1);
      step.terminal = e.type === 'resOutputsEvent' ? 'outputs' : 'failed';
      step.terminalOp = op;
      step.terminalIndex = i;
    }
  });
  return steps;
}

/**
 * resourceChanges as section 4.4 defines them: logical steps that completed, counted by op;
 * refresh steps under their result op; failed and interrupted custom steps never; components
 * (no outputs at step end) whenever their step ran.
 */
export function countChanges(events: readonly RawEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of pairSteps(events)) {
    if (s.terminal === 'failed') continue;
    let key: string | undefined;
    if (s.op === 'refresh') key = s.terminal === 'outputs' ? s.terminalOp : undefined;
    else if (s.logical && COUNTED.has(s.op) && (!s.custom || s.terminal === 'outputs')) key = s.op;
    if (key !== undefined) out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export function stepResults(events: readonly RawEvent[]): Array<{ op: string; type: string; result: 'succeeded' | 'failed' | 'interrupted' }> {
  return pairSteps(events).map((s) => ({
    op: s.op,
    type: s.type,
    result: s.terminal === 'outputs' ? 'succeeded' : s.terminal === 'failed' ? 'failed' : 'interrupted',
  }));
}
