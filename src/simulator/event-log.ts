import { POLICY_PACK, RESOURCE_TYPES } from './catalog.js';
import type { Prng } from './prng.js';
import type { Step } from './plan-steps.js';
import type { PlanKind, ViolationRecord, WireEvent } from './sim-model.js';

/**
 * Event emission: the engine events of one simulated update, in the wire shape `/events`
 * serves (docs/simulator.md lists the rules they follow), stamped with the update's clock.
 */

export const ERROR_PREFIX = '<{%fg 1%}>error: <{%reset%}>';

export interface Diagnostic {
  readonly urn?: string | undefined;
  readonly prefix?: string;
  readonly message: string;
  readonly severity: string;
  readonly ephemeral?: boolean;
}

export class EventLog {
  readonly events: WireEvent[] = [];
  readonly violations: ViolationRecord[] = [];
  private readonly planning: { planning?: true };

  constructor(
    private readonly startTime: number,
    private readonly clock: { readonly t: number },
    preview: boolean,
  ) {
    this.planning = preview ? { planning: true } : {};
  }

  emit(key: string, payload: Record<string, unknown>): void {
    this.events.push({ timestamp: this.startTime + this.clock.t, type: key, [key]: payload } as WireEvent);
  }

  /** The step's metadata as its pre event (terminal false) or its outputs/failed event shows it. */
  private metadata(s: Step, terminal: boolean): Record<string, unknown> {
    return {
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
    };
  }

  resourcePre(s: Step): void {
    s.preIndex = this.events.length;
    this.emit('resourcePreEvent', { metadata: this.metadata(s, false), ...this.planning });
  }

  resOutputs(s: Step): void {
    this.emit('resOutputsEvent', { metadata: this.metadata(s, true), ...this.planning });
    s.terminal = 'outputs';
  }

  resOpFailed(s: Step, status: number, completedSteps: number): void {
    this.emit('resOpFailedEvent', { metadata: this.metadata(s, false), status, steps: completedSteps });
    s.terminal = 'failed';
  }

  diag(d: Diagnostic): void {
    this.emit('diagnosticEvent', {
      ...(d.urn ? { urn: d.urn } : {}),
      ...(d.prefix ? { prefix: d.prefix } : {}),
      message: d.message,
      color: 'raw',
      severity: d.severity,
      ...(d.ephemeral ? { ephemeral: true } : {}),
    });
  }

  /** The provider error of a failed step. */
  stepError(s: Step, rng: Prng): void {
    const spec = RESOURCE_TYPES[s.res.specKey ?? ''];
    const text = (spec ? rng.pick(spec.failures) : 'provider returned an unexpected error').replaceAll('{id}', s.res.id || s.res.name);
    this.diag({ urn: s.res.urn, prefix: ERROR_PREFIX, message: `<{%reset%}>${text}<{%reset%}>\n`, severity: 'error' });
  }

  /** A policy violation, also recorded as truth. */
  policy(urn: string, name: string, message: string, level: string, severity: string): void {
    this.emit('policyEvent', {
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
    this.violations.push({ policyPack: POLICY_PACK.name, policy: name, enforcementLevel: level });
  }

  /** The diagnostics of a program that fails on its own (an update) or of a provider that cannot start (refresh, destroy). */
  programFailure(kind: PlanKind, stackUrn: string | undefined): void {
    if (kind === 'update') {
      this.diag({
        urn: stackUrn,
        message: "    TypeError: Cannot read properties of undefined (reading 'arn')\n        at Object.<anonymous> (/app/index.ts:42:37)\n",
        severity: 'info#err',
      });
      this.diag({
        urn: stackUrn,
        prefix: ERROR_PREFIX,
        message: "<{%reset%}>Running program '/app' failed with an unhandled exception:\n<{%reset%}>TypeError: Cannot read properties of undefined (reading 'arn')<{%reset%}>\n",
        severity: 'error',
      });
    } else {
      this.diag({
        urn: stackUrn,
        prefix: ERROR_PREFIX,
        message: '<{%reset%}>pulumi:providers:aws resource \'aws-provider\' has a problem: No valid credential sources found.<{%reset%}>\n',
        severity: 'error',
      });
    }
  }

  policySummary(): void {
    this.emit('policyAnalyzeStackSummaryEvent', {
      policyPackName: POLICY_PACK.name,
      policyPackVersion: String(POLICY_PACK.version),
      policyPackVersionTag: POLICY_PACK.versionTag,
      ...(this.violations.length > 0 ? { failed: [...new Set(this.violations.map((v) => v.policy))] } : { passed: ['stack-has-owner-tag'] }),
    });
  }
}
