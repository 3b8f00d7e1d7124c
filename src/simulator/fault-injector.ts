import { SimulatorError } from './simulator-error.js';

export const FAULT_KINDS = ['429', '500', '502', '503', '504', 'slow', 'malformed', '401'] as const;
export const ENDPOINTS = ['listStacks', 'getStack', 'listUpdates', 'latestPreviews', 'versionPreviews', 'updateStatus', 'engineEvents'] as const;

export type Endpoint = (typeof ENDPOINTS)[number];

export interface FaultRule {
  kind: (typeof FAULT_KINDS)[number];
  /** Restrict to one endpoint; default all. */
  endpoint?: Endpoint;
  /** Apply to the next `count` matching requests, then the rule is spent. */
  count?: number;
  /** Or: apply to every Nth matching request. */
  everyNth?: number;
  /** For 429 (sent as Retry-After; default 1). */
  retryAfterSeconds?: number;
  /** For slow (default 1000). */
  delayMs?: number;
}

interface ActiveRule {
  readonly rule: FaultRule;
  /** Matching requests seen, for everyNth. */
  seen: number;
  /** Left for count rules. */
  remaining: number | undefined;
}

function positiveInt(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', `fault rule ${what} must be a positive integer, got ${String(value)}`);
  }
}

export function validateFaultRule(rule: FaultRule): void {
  if (!(FAULT_KINDS as readonly string[]).includes(rule.kind)) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', `unknown fault kind "${String(rule.kind)}" (expected one of ${FAULT_KINDS.join(', ')})`);
  }
  if (rule.endpoint !== undefined && !(ENDPOINTS as readonly string[]).includes(rule.endpoint)) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', `unknown fault endpoint "${String(rule.endpoint)}" (expected one of ${ENDPOINTS.join(', ')})`);
  }
  if (rule.count !== undefined && rule.everyNth !== undefined) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', 'a fault rule takes count or everyNth, not both');
  }
  positiveInt(rule.count, 'count');
  positiveInt(rule.everyNth, 'everyNth');
  if (rule.retryAfterSeconds !== undefined && (!Number.isInteger(rule.retryAfterSeconds) || rule.retryAfterSeconds < 0)) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', 'fault rule retryAfterSeconds must be a non-negative integer');
  }
  if (rule.delayMs !== undefined && (!Number.isFinite(rule.delayMs) || rule.delayMs < 0)) {
    throw new SimulatorError('SIMULATOR_FAULT_INVALID', 'fault rule delayMs must be a non-negative number');
  }
}

/**
 * Deterministic fault injection: rules are checked in the order they were added; the first
 * that fires decides the request. A count rule fires for its next `count` matching requests
 * and is then spent; an everyNth rule fires on every Nth matching request; a rule with
 * neither fires on every matching request until cleared.
 */
export class FaultInjector {
  private rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    validateFaultRule(rule);
    this.rules.push({ rule: { ...rule }, seen: 0, remaining: rule.count });
  }

  clear(): void {
    this.rules = [];
  }

  /** The fault to apply to one request to `endpoint`, if any. */
  pick(endpoint: Endpoint): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    for (const active of this.rules) {
      if (active.rule.endpoint !== undefined && active.rule.endpoint !== endpoint) continue;
      active.seen += 1;
      if (chosen) continue;
      if (active.remaining !== undefined) {
        if (active.remaining > 0) {
          active.remaining -= 1;
          chosen = active.rule;
        }
      } else if (active.rule.everyNth !== undefined) {
        if (active.seen % active.rule.everyNth === 0) chosen = active.rule;
      } else {
        chosen = active.rule;
      }
    }
    this.rules = this.rules.filter((a) => a.remaining === undefined || a.remaining > 0);
    return chosen;
  }
}
